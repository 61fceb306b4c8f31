"""turbo_hf.analysis: alignment / uniformity against direct loops, embed() with a fake model, plots."""

import itertools
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from transformers.utils import ModelOutput

from turbo_hf.analysis import (
    alignment,
    embed,
    plot_align_uniform,
    plot_embedding_kde,
    save_analysis_json,
    uniformity,
)


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def _alignment_by_loop(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    return sum(np.linalg.norm(_unit(a) - _unit(b)) ** alpha for a, b in zip(x, y)) / len(x)


def _uniformity_by_loop(x: np.ndarray, t: float) -> float:
    pairs = list(itertools.combinations(range(len(x)), 2))
    total = sum(math.exp(-t * np.sum((_unit(x[i]) - _unit(x[j])) ** 2)) for i, j in pairs)
    return math.log(total / len(pairs))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 3.0])
def test_alignment_matches_a_python_loop(alpha):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 8)), rng.normal(size=(30, 8))
    assert alignment(x, y, alpha=alpha) == pytest.approx(_alignment_by_loop(x, y, alpha), rel=1e-12)


@pytest.mark.parametrize("t", [0.5, 2.0, 5.0])
def test_uniformity_matches_a_python_loop(t):
    x = np.random.default_rng(1).normal(size=(25, 6))
    assert uniformity(x, t=t) == pytest.approx(_uniformity_by_loop(x, t), rel=1e-10)


def test_uniformity_matches_wang_isola_pdist_formula_across_chunks():
    x = torch.randn(301, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    normalized = torch.nn.functional.normalize(x, dim=1)
    expected = torch.pdist(normalized, p=2).pow(2).mul(-2).exp().mean().log().item()
    # chunk sizes that do and do not divide N, and a single chunk
    for chunk_size in (1, 7, 100, 1024):
        assert uniformity(x, chunk_size=chunk_size) == pytest.approx(expected, rel=1e-10)


def test_known_values():
    x = np.random.default_rng(3).normal(size=(10, 4))
    assert alignment(x, x) == pytest.approx(0.0, abs=1e-12)
    assert alignment(x, -x) == pytest.approx(4.0)  # antipodal unit vectors are 2 apart
    assert uniformity(np.tile(x[:1], (10, 1))) == pytest.approx(0.0, abs=1e-12)
    # Two antipodal points: one pair at squared distance 4.
    assert uniformity(np.array([[1.0, 0.0], [-1.0, 0.0]]), t=2) == pytest.approx(-8.0)


def test_measures_are_scale_invariant_and_accept_tensors_with_grad():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(20, 5)), rng.normal(size=(20, 5))
    scales = rng.uniform(0.1, 10.0, size=(20, 1))
    assert alignment(x * scales, y) == pytest.approx(alignment(x, y))
    assert uniformity(x * scales) == pytest.approx(uniformity(x))
    tensor = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    assert uniformity(tensor) == pytest.approx(uniformity(x), rel=1e-5)
    assert alignment(tensor, torch.tensor(y)) == pytest.approx(alignment(x, y), rel=1e-5)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="paired"):
        alignment(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="at least two"):
        uniformity(np.ones((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        uniformity(np.ones(5))


@dataclass
class _FakeOutput(ModelOutput):
    logits: torch.Tensor | None = None
    audio_embeds: torch.Tensor | None = None
    text_embeds: torch.Tensor | None = None


class _FakeTurbo(torch.nn.Module):
    """Stands in for TurboForAudioTextClassification: records its mode and returns projected embeddings."""

    def __init__(self):
        super().__init__()
        self.audio_projection = torch.nn.Linear(3, 4)
        self.text_projection = torch.nn.Linear(2, 4)
        self.dropout = torch.nn.Dropout(0.5)
        self.seen_training = []
        self.seen_grad = []

    def forward(self, input_values, input_ids, labels=None):
        self.seen_training.append(self.training)
        self.seen_grad.append(torch.is_grad_enabled())
        audio = self.dropout(self.audio_projection(input_values))
        return _FakeOutput(
            logits=audio[:, :2], audio_embeds=audio, text_embeds=self.text_projection(input_ids)
        )


def _fake_dataset(n: int, with_labels: bool = True) -> list[dict]:
    examples = []
    for i in range(n):
        example = {"audio": [float(i), 1.0, -float(i)], "ids": [float(i), 2.0]}
        if with_labels:
            example["label"] = i % 3
        examples.append(example)
    return examples


def _fake_collator(examples: list[dict]) -> dict[str, torch.Tensor]:
    batch = {
        "input_values": torch.tensor([example["audio"] for example in examples]),
        "input_ids": torch.tensor([example["ids"] for example in examples]),
    }
    if all("label" in example for example in examples):
        batch["labels"] = torch.tensor([example["label"] for example in examples])
    return batch


def test_embed_returns_embeddings_in_dataset_order_in_eval_mode_without_grad():
    model = _FakeTurbo()
    model.train()
    dataset = _fake_dataset(11)
    result = embed(model, dataset, _fake_collator, batch_size=4, progress_bar=False)
    assert result["audio"].shape == (11, 4) and result["text"].shape == (11, 4)
    assert result["audio"].dtype == np.float32
    np.testing.assert_array_equal(result["labels"], [i % 3 for i in range(11)])
    with torch.no_grad():
        expected_audio = model.audio_projection(torch.tensor([e["audio"] for e in dataset])).numpy()
        expected_text = model.text_projection(torch.tensor([e["ids"] for e in dataset])).numpy()
    # Equal to one un-dropped full pass: order kept and dropout off.
    np.testing.assert_allclose(result["audio"], expected_audio, rtol=1e-6)
    np.testing.assert_allclose(result["text"], expected_text, rtol=1e-6)
    assert model.seen_training == [False, False, False]
    assert model.seen_grad == [False, False, False]
    assert model.training and model.dropout.training


def test_embed_restores_each_submodules_mode():
    model = _FakeTurbo()
    model.train()
    model.audio_projection.eval()  # e.g. a frozen encoder kept in eval mode on purpose
    embed(model, _fake_dataset(3), _fake_collator, progress_bar=False)
    assert model.training and model.dropout.training and not model.audio_projection.training

    model.eval()
    embed(model, _fake_dataset(3), _fake_collator, progress_bar=False)
    assert not any(module.training for module in model.modules())


def test_embed_without_labels_and_with_a_model_lacking_embeddings():
    result = embed(_FakeTurbo(), _fake_dataset(5, with_labels=False), _fake_collator, progress_bar=False)
    assert result["labels"] is None and result["audio"].shape == (5, 4)

    class _NoEmbeddings(_FakeTurbo):
        def forward(self, **batch):
            return _FakeOutput(logits=torch.zeros(len(batch["input_ids"]), 2))

    model = _NoEmbeddings()
    with pytest.raises(ValueError, match="audio_embeds"):
        embed(model, _fake_dataset(2), _fake_collator, progress_bar=False)
    assert model.training  # restored even when the forward fails


def _png_written(path) -> bool:
    return path.exists() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_align_uniform_writes_a_png(tmp_path):
    points = [
        {"name": "vanilla", "alignment": 1.2, "uniformity": -2.1, "seed": 0},
        {"name": "vanilla", "alignment": 1.1, "uniformity": -2.0, "seed": 1},
        {"name": "turbo", "alignment": 0.6, "uniformity": -3.0, "seed": 0},
        {"name": "cross", "alignment": np.float32(0.8), "uniformity": -2.5},
    ]
    path = plot_align_uniform(points, tmp_path / "fig" / "align_uniform.png", title="IEMOCAP")
    assert path == tmp_path / "fig" / "align_uniform.png"
    assert _png_written(path)
    with pytest.raises(ValueError, match="lacks"):
        plot_align_uniform([{"name": "turbo", "alignment": 1.0}], tmp_path / "bad.png")


@pytest.mark.parametrize("on_circle", [True, False])
def test_plot_embedding_kde_writes_a_png(tmp_path, on_circle):
    rng = np.random.default_rng(5)
    embeds = {"vanilla": rng.normal(size=(80, 16)), "turbo": torch.randn(60, 16)}
    labels = {"vanilla": rng.integers(0, 4, size=80), "turbo": None}
    path = plot_embedding_kde(embeds, tmp_path / "kde.png", labels_by_model=labels, on_circle=on_circle)
    assert _png_written(path)


def test_plot_embedding_kde_survives_collapsed_embeddings(tmp_path):
    collapsed = np.tile(np.arange(1.0, 9.0), (20, 1))
    assert _png_written(plot_embedding_kde({"collapsed": collapsed}, tmp_path / "collapsed.png"))


def test_save_analysis_json_handles_numpy_and_tensors(tmp_path):
    results = {
        "turbo": {"alignment": np.float32(0.5), "uniformity": torch.tensor(-2.0), "seeds": np.arange(2)}
    }
    path = save_analysis_json(results, tmp_path / "out" / "analysis.json")
    assert json.loads(path.read_text()) == {"turbo": {"alignment": 0.5, "uniformity": -2.0, "seeds": [0, 1]}}
