"""Representation analysis of the paper (Listing 2, Fig. 2 and Fig. 3): alignment, uniformity and plots.

`alignment` and `uniformity` are the measures of Wang & Isola (ICML 2020) on L2-normalised embeddings;
lower is better for both. `embed` collects a model's projected audio / text embeddings over a dataset,
and the plot functions draw the paper's figures, and a confusion matrix, with matplotlib (an optional
dependency, imported only when a plot is asked for, always drawn off-screen with the Agg canvas).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

# F.normalize's epsilon: a zero vector stays zero instead of becoming NaN.
_NORM_EPS = 1e-12


def _as_matrix(embeds: Any, name: str) -> np.ndarray:
    """Torch tensors (any device, with grad) or array-likes to a float64 `(N, d)` numpy array."""
    if isinstance(embeds, torch.Tensor):
        embeds = embeds.detach().to("cpu", torch.float64).numpy()
    array = np.asarray(embeds, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (num_examples, dim); got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite values")
    return array


def _l2_normalize(array: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(array, axis=-1, keepdims=True)
    return array / np.maximum(norms, _NORM_EPS)


def alignment(audio_embeds: Any, text_embeds: Any, alpha: float = 2.0) -> float:
    """Mean over pairs of `||x_i - y_i||_2 ** alpha` after L2 normalisation (0 when pairs coincide, max 2**alpha)."""
    audio = _l2_normalize(_as_matrix(audio_embeds, "audio_embeds"))
    text = _l2_normalize(_as_matrix(text_embeds, "text_embeds"))
    if audio.shape != text.shape:
        raise ValueError(
            f"audio_embeds and text_embeds must be paired row by row; got {audio.shape} and {text.shape}"
        )
    return float(np.mean(np.linalg.norm(audio - text, axis=1) ** alpha))


def _logsumexp(values: np.ndarray) -> float:
    peak = values.max()
    return float(peak + np.log(np.exp(values - peak).sum()))


def uniformity(embeds: Any, t: float = 2.0, chunk_size: int = 1024) -> float:
    """`log mean_{i<j} exp(-t * ||x_i - x_j||^2)` over distinct pairs of L2-normalised rows.

    Equals `torch.pdist(x).pow(2).mul(-t).exp().mean().log()`: 0 when all rows coincide, lower when
    they spread over the sphere. Rows are processed `chunk_size` at a time, so memory stays at
    `chunk_size * N` however many pairs there are.
    """
    x = _l2_normalize(_as_matrix(embeds, "embeds"))
    num_rows = x.shape[0]
    if num_rows < 2:
        raise ValueError(f"uniformity needs at least two embeddings; got {num_rows}")
    squared_norms = np.einsum("ij,ij->i", x, x)
    chunk_sums = []
    for start in range(0, num_rows - 1, chunk_size):
        stop = min(start + chunk_size, num_rows)
        rows, columns = x[start:stop], x[start + 1 :]
        squared = squared_norms[start:stop, None] + squared_norms[None, start + 1 :] - 2.0 * rows @ columns.T
        # Column c of this block is row start + 1 + c: keep only pairs with j > i.
        upper = np.arange(columns.shape[0])[None, :] >= np.arange(stop - start)[:, None]
        chunk_sums.append(_logsumexp(-t * np.maximum(squared[upper], 0.0)))
    num_pairs = num_rows * (num_rows - 1) / 2
    return float(np.logaddexp.reduce(chunk_sums) - np.log(num_pairs))


def _to_device(batch: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()
    }


def _projected(outputs: Any, field: str) -> torch.Tensor:
    value = getattr(outputs, field, None)
    if value is None:
        raise ValueError(
            f"the model output ({type(outputs).__name__}) has no {field!r}; embed() needs a model that returns "
            "the projected audio_embeds and text_embeds (TurboClassifierOutput)"
        )
    return value.detach().to("cpu", torch.float32)


def _default_collator(model: torch.nn.Module):
    """Whole utterances through the processor saved beside the model (`model.name_or_path`)."""
    from .collator import DataCollatorForAudioText
    from .processing_turbo import TurboProcessor

    source = getattr(model, "name_or_path", None)
    if not source:
        raise ValueError("embed() needs a collator for a model that was not loaded with from_pretrained")
    num_labels = getattr(getattr(model, "config", None), "num_labels", None)
    return DataCollatorForAudioText(TurboProcessor.from_pretrained(source), num_labels=num_labels)


def embed(
    model: torch.nn.Module,
    dataset: Any,
    collator: Callable[[list[Any]], Mapping[str, Any]] | None = None,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    num_workers: int = 0,
    progress_bar: bool = True,
) -> dict[str, np.ndarray | None]:
    """Projected embeddings of every example, in dataset order: `{"audio", "text", "labels"}`.

    `collator` defaults to `DataCollatorForAudioText(processor)` (whole utterances) with the processor
    saved beside a model loaded by `from_pretrained`. The model runs in eval mode (one pass, no
    dropout) under `torch.no_grad`, on `device` (default: where its parameters are); each
    submodule's training flag is restored afterwards. `labels` is None when the collator produced no
    "labels" (unlabelled data).
    """
    if collator is None:
        collator = _default_collator(model)
    if device is None:
        first_parameter = next(model.parameters(), None)
        device = first_parameter.device if first_parameter is not None else torch.device("cpu")
    device = torch.device(device)
    loader = DataLoader(
        dataset, batch_size=batch_size, shuffle=False, collate_fn=collator, num_workers=num_workers
    )
    # Per module, not model.train(was_training): a frozen encoder may deliberately sit in eval mode.
    training_flags = {module: module.training for module in model.modules()}
    audio, text, labels = [], [], []
    model.eval()
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc="Embedding", disable=not progress_bar):
                batch = _to_device(batch, device)
                outputs = model(**batch)
                audio.append(_projected(outputs, "audio_embeds"))
                text.append(_projected(outputs, "text_embeds"))
                if batch.get("labels") is not None:
                    labels.append(batch["labels"].detach().cpu())
    finally:
        for module, flag in training_flags.items():
            module.training = flag
    if not audio:
        raise ValueError("embed() got an empty dataset")
    return {
        "audio": torch.cat(audio).numpy(),
        "text": torch.cat(text).numpy(),
        "labels": torch.cat(labels).numpy() if len(labels) == len(audio) else None,
    }


def _new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1):
    """A figure on the Agg canvas: no pyplot state, no window, no change to the user's backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def _save(figure: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=150)
    return path


_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def plot_align_uniform(
    points: Sequence[Mapping[str, Any]], path: str | os.PathLike, title: str | None = None
) -> Path:
    """Fig. 2: one point per trained model, x = uniformity, y = alignment; lower left is better.

    Each point is `{"name": method, "alignment": float, "uniformity": float, "seed": optional}`; points of
    one method share a marker and colour, and carry their seed (or name) as a label.
    """
    from matplotlib import colormaps

    methods: dict[str, list[Mapping[str, Any]]] = {}
    for position, point in enumerate(points):
        missing = {"name", "alignment", "uniformity"} - set(point)
        if missing:
            raise ValueError(f"point {position} lacks {sorted(missing)}; got keys {sorted(point)}")
        methods.setdefault(str(point["name"]), []).append(point)
    if not methods:
        raise ValueError("plot_align_uniform needs at least one point")

    figure, axes = _new_figure(5.0, 4.0)
    ax = axes[0, 0]
    colours = colormaps["tab10"]
    for number, (name, group) in enumerate(methods.items()):
        xs = [float(point["uniformity"]) for point in group]
        ys = [float(point["alignment"]) for point in group]
        ax.scatter(
            xs, ys, s=50, marker=_MARKERS[number % len(_MARKERS)], color=colours(number % 10), label=name
        )
        for point, x, y in zip(group, xs, ys):
            note = f"seed {point['seed']}" if point.get("seed") is not None else name
            ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(r"$\ell_{\mathrm{uniform}}$ (lower: more uniform)")
    ax.set_ylabel(r"$\ell_{\mathrm{align}}$ (lower: better aligned)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return _save(figure, path)


def _project_2d(embeds: np.ndarray, on_circle: bool) -> np.ndarray:
    """L2-normalise, keep the two leading principal components, optionally put each point on S^1."""
    x = _l2_normalize(embeds)
    centred = x - x.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    # Fewer than two components when N or d is 1: pad, so that every model yields (N, 2).
    basis = np.zeros((x.shape[1], 2))
    basis[:, : min(2, components.shape[0])] = components[:2].T
    points = centred @ basis
    return _l2_normalize(points) if on_circle else points


def _kde_panel(ax: Any, points: np.ndarray, labels: np.ndarray | None, limit: float, grid_size: int) -> None:
    from scipy.stats import gaussian_kde

    grid = np.linspace(-limit, limit, grid_size)
    xx, yy = np.meshgrid(grid, grid)
    try:
        density = gaussian_kde(points.T)(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
        ax.contourf(xx, yy, density, levels=20, cmap="GnBu")
    except (np.linalg.LinAlgError, ValueError) as err:
        # Collapsed embeddings (all on one line or point) have a singular covariance: show the points only.
        logger.warning(
            "no KDE for a degenerate set of %d points (%s); drawing the points only", len(points), err
        )
    if labels is not None:
        for label in np.unique(labels):
            chosen = labels == label
            ax.scatter(points[chosen, 0], points[chosen, 1], s=3, alpha=0.5, label=str(label))
        ax.legend(fontsize=6, markerscale=3, loc="upper right")
    else:
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.3, color="black")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")


def _angle_panel(ax: Any, points: np.ndarray, concentration: float) -> None:
    """von Mises KDE of the angles, the lower row of Wang & Isola's figure."""
    angles = np.arctan2(points[:, 1], points[:, 0])
    theta = np.linspace(-np.pi, np.pi, 361)
    kernel = np.exp(concentration * np.cos(theta[:, None] - angles[None, :]))
    density = kernel.mean(axis=1) / (2 * np.pi * np.i0(concentration))
    ax.fill_between(theta, density, alpha=0.5)
    ax.plot(theta, density)
    ax.set_xlim(-np.pi, np.pi)
    ax.set_xlabel("angle (rad)")


def plot_embedding_kde(
    embeds_by_model: Mapping[str, Any],
    path: str | os.PathLike,
    labels_by_model: Mapping[str, Any] | None = None,
    on_circle: bool = True,
    grid_size: int = 100,
    vmf_concentration: float = 8.0,
) -> Path:
    """Fig. 3: per model, a 2-D Gaussian KDE of its embeddings, one column per model.

    The embeddings are L2-normalised, reduced to their two leading principal components (each model in
    its own PCA basis), then, with `on_circle`, normalised onto the unit circle as in Wang & Isola's
    figure, which also adds a second row with a von Mises KDE of the angles. `on_circle=False` shows the
    plain PCA projection. Points are coloured by class when `labels_by_model` gives labels.
    """
    if not embeds_by_model:
        raise ValueError("plot_embedding_kde needs at least one model's embeddings")
    nrows = 2 if on_circle else 1
    figure, axes = _new_figure(
        3.0 * len(embeds_by_model), 3.0 * nrows, ncols=len(embeds_by_model), nrows=nrows
    )
    limit = 1.3 if on_circle else None
    for column, (name, embeds) in enumerate(embeds_by_model.items()):
        points = _project_2d(_as_matrix(embeds, f"embeddings of {name!r}"), on_circle)
        labels = None
        if labels_by_model is not None and labels_by_model.get(name) is not None:
            labels = np.asarray(labels_by_model[name])
            if len(labels) != len(points):
                raise ValueError(f"{name!r}: {len(labels)} labels for {len(points)} embeddings")
        panel_limit = limit if limit is not None else 1.1 * max(float(np.abs(points).max()), _NORM_EPS)
        _kde_panel(axes[0, column], points, labels, panel_limit, grid_size)
        axes[0, column].set_title(name)
        if on_circle:
            _angle_panel(axes[1, column], points, vmf_concentration)
    return _save(figure, path)


def plot_confusion_matrix(
    counts: Any, class_names: Sequence[str], path: str | os.PathLike, title: str | None = None
) -> Path:
    """A confusion matrix as a heat map: rows are true classes, columns predicted ones, colour the share
    of the row, and each cell shows its count and that share (a row without examples stays blank)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2 or counts.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion matrix of shape {counts.shape} for {len(class_names)} class names")
    totals = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, counts / totals, np.nan)
    size = 1.2 + 0.9 * len(class_names)
    figure, axes = _new_figure(size + 1.0, size)
    ax = axes[0, 0]
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=ax, label="share of the true class")
    for row in range(counts.shape[0]):
        for column in range(counts.shape[1]):
            if totals[row, 0] == 0:
                continue
            share = shares[row, column]
            ax.text(
                column,
                row,
                f"{counts[row, column]}\n{100 * share:.0f}%",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share > 0.6 else "black",
            )
    ticks = range(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return _save(figure, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().tolist()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def save_analysis_json(results: Any, path: str | os.PathLike) -> Path:
    """Write analysis results (numbers, numpy values, tensors, nested dicts / lists) as indented JSON."""
    from .json_files import write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, results, default=_jsonable)  # strict: an undefined number (NaN) is written as null
    return path


__all__ = [
    "alignment",
    "embed",
    "plot_align_uniform",
    "plot_confusion_matrix",
    "plot_embedding_kde",
    "save_analysis_json",
    "uniformity",
]
