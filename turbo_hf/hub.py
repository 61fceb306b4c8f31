"""Share a trained Turbo model on the Hugging Face Hub: model card, saved folder, upload.

`save_for_hub` writes exactly what `push_to_hub` uploads (weights as safetensors, config, processor,
README.md) and returns those files, so they can be checked before anything leaves the machine.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token, is_offline_mode
from huggingface_hub.utils import HFValidationError, validate_repo_id
from transformers.utils import logging

from .metrics import METRICS, PAPER_CITATION
from .modeling_turbo import TurboForAudioTextClassification
from .pipeline import TASK, label_names
from .processing_turbo import TurboProcessor

logger = logging.get_logger(__name__)

# The Hub's fixed list of pipeline tags has no audio+text classification; audio-classification is the
# closest one and puts the model where audio classifiers are searched for.
PIPELINE_TAG = "audio-classification"
LIBRARY_NAME = "turbo_hf"
DEFAULT_COMMIT_MESSAGE = "Upload Turbo audio-text classifier"

# Metrics appear in Trainer results with the split as prefix ("test_wa") or bare ("wa").
_SPLIT_PREFIXES = {"test_": "test", "eval_": "validation", "validation_": "validation"}
# owner/name or a legacy top-level name such as bert-base-uncased; local folders are not ids.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _split_metric(key: str) -> tuple[str, str | None]:
    for prefix, split in _SPLIT_PREFIXES.items():
        if key.startswith(prefix):
            return key[len(prefix) :], split
    return key, None


def _known_metrics(eval_results: Mapping[str, Any] | None) -> list[tuple[str, str | None, float]]:
    """(metric, split, value) for the classification metrics in `eval_results`; loss, runtime... left out."""
    found = []
    for key, value in (eval_results or {}).items():
        name, split = _split_metric(key)
        # An undefined metric (NaN, e.g. the EER of a one-class split) is no result to publish.
        if name in METRICS and isinstance(value, (int, float)) and math.isfinite(value):
            found.append((name, split, float(value)))
    return found


def _looks_like_hub_id(name: str | None) -> bool:
    return bool(name) and _HUB_ID.match(name) is not None and not os.path.exists(name)


def _encoder_ids(model: TurboForAudioTextClassification) -> list[str]:
    """Hub ids the encoders were loaded from (known on a model built by `from_encoders_pretrained`)."""
    names = [model.config.audio_config._name_or_path, model.config.text_config._name_or_path]
    return [name for name in names if _looks_like_hub_id(name)]


def _table_cell(text: str) -> str:
    """`text` kept inside one Markdown table cell: a `|` would end the cell and a line break the row."""
    return re.sub(r"\r\n|\r|\n", r"\\n", text).replace("|", "\\|")


def _code(text: str) -> str:
    """`text` as inline code, with a fence longer than any run of backticks inside it."""
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _describe_encoder(config) -> str:
    name = config._name_or_path
    if _looks_like_hub_id(name):
        return f"`{config.model_type}` ([{name}](https://huggingface.co/{name}))"
    if name:  # a local folder: named by its last component, without this machine's path
        return f"`{config.model_type}` (local folder {_code(Path(name).name)})"
    return f"`{config.model_type}`"


def _results_table(metrics: list[tuple[str, str | None, float]]) -> str:
    rows = [
        f"| {split or '-'} | {METRICS[name].display_name} | {value:.4f} |" for name, split, value in metrics
    ]
    return "\n".join(["| Split | Metric | Value |", "|---|---|---|", *rows])


def build_model_card(
    model: TurboForAudioTextClassification,
    eval_results: Mapping[str, Any] | None = None,
    dataset_name: str | None = None,
    base_model_ids: Sequence[str] | None = None,
    repo_id: str | None = None,
) -> str:
    """README.md text for the Hub: YAML metadata (pipeline tag, tags, labels, base models, model-index)
    and a body stating the encoders, the loss and its hyper-parameters, the results and how to use it.

    `eval_results` is a metrics dict such as `Trainer.evaluate(metric_key_prefix="test")` returns
    (`test_wa`, `test_ua`, ...; the prefix names the split); only WA / UA / macro F1 / ACC / EER are
    reported. `base_model_ids` defaults to the encoders' hub ids when the model was built from them.
    `repo_id` names the model in the card and its usage examples.
    """
    if repo_id is not None:
        _check_repo_id(repo_id)
    config = model.config
    labels = label_names(config)
    base_models = list(base_model_ids) if base_model_ids is not None else _encoder_ids(model)
    metrics = _known_metrics(eval_results)
    model_name = repo_id.split("/")[-1] if repo_id else "turbo-audio-text-classifier"
    card_results = [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name="Audio-text classification",
            dataset_type=dataset_name or "custom",
            dataset_name=dataset_name or "custom",
            dataset_split=split,
            metric_type=name,
            metric_name=METRICS[name].display_name,
            metric_value=value,
        )
        for name, split, value in metrics
    ]
    data = ModelCardData(
        library_name=LIBRARY_NAME,
        pipeline_tag=PIPELINE_TAG,
        tags=[
            LIBRARY_NAME,
            TASK,
            "contrastive-learning",
            "multimodal",
            "audio",
            "text",
            config.audio_config.model_type,
            config.text_config.model_type,
        ],
        base_model=base_models or None,
        datasets=[dataset_name] if dataset_name else None,
        metrics=sorted({name for name, _, _ in metrics}) or None,
        model_name=model_name,
        eval_results=card_results or None,
        labels=labels,
    )
    body = _CARD_BODY.format(
        model_name=model_name,
        model_ref=repo_id or "path/to/model",
        audio=_table_cell(_describe_encoder(config.audio_config)),
        text=_table_cell(_describe_encoder(config.text_config)),
        loss_mode=config.loss_mode,
        ce_weight=config.ce_weight,
        temperature=config.temperature,
        projection_dim=config.projection_dim,
        dropout=config.dropout,
        text_pooling=config.text_pooling,
        classify_on=config.classify_on,
        labels=", ".join(_table_cell(_code(label)) for label in labels),
        dataset=f" on `{dataset_name}`" if dataset_name else "",
        results=_results_table(metrics) if metrics else "No evaluation results were given.",
        task=TASK,
        citation=PAPER_CITATION.strip(),
    )
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n{body}"))


_CARD_BODY = """
# {model_name}

An audio + text classifier fine-tuned{dataset} with `turbo_hf`: an audio encoder and
a text encoder, linear projections to a joint space and a linear classifier on the concatenated
projections, trained with cross-entropy plus the Turbo contrastive loss ("Turbo your multi-modal
classification with contrastive learning", Interspeech 2023).

## Model

| | |
|---|---|
| Audio encoder | {audio} |
| Text encoder | {text} |
| Loss mode | `{loss_mode}` |
| λ (CE weight) | {ce_weight} |
| τ (temperature) | {temperature} |
| Projection dim | {projection_dim} |
| Dropout | {dropout} |
| Text pooling | `{text_pooling}` |
| Classifier input | `{classify_on}` view |
| Labels | {labels} |

## Evaluation

{results}

## How to use

This model needs the `turbo_hf` package (install it from its source tree with `pip install -e .`):
`import turbo_hf` registers the `turbo` model type with transformers. Without it, `AutoModel` and
`pipeline` stop with "does not recognize this architecture" / an unknown model type `turbo`.

```python
import turbo_hf  # registers the model, processor and the "{task}" pipeline
from transformers import pipeline

classifier = pipeline("{task}", model="{model_ref}")
classifier({{"audio": "utterance.wav", "text": "the transcript"}})
# without transcripts: pipeline(..., asr_model="openai/whisper-small") transcribes the audio first
```

or with the model classes:

```python
import turbo_hf
from transformers import AutoModel, AutoProcessor

model = AutoModel.from_pretrained("{model_ref}")         # TurboForAudioTextClassification
processor = AutoProcessor.from_pretrained("{model_ref}")  # TurboProcessor
inputs = processor(audio=[waveform], text=["the transcript"], sampling_rate=16000)
probabilities = model(**inputs).logits.softmax(-1)
```

From the command line: `turbo-hf predict {model_ref} --audio utterance.wav --text "the transcript"`.

## Citation

```bibtex
{citation}
```
"""


def save_for_hub(
    model: TurboForAudioTextClassification,
    processor: TurboProcessor,
    folder: str | os.PathLike,
    eval_results: Mapping[str, Any] | None = None,
    dataset_name: str | None = None,
    repo_id: str | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Write the model (safetensors), the processor and README.md into `folder`.

    Returns the paths, relative to `folder` and sorted, of the files this save wrote: what `push_to_hub`
    uploads. A folder that already holds other files (an old `pytorch_model.bin`, anything this save
    does not write) is refused, since they would not be uploaded; `overwrite=True` writes into it
    anyway, leaves those files untouched and names them in a warning. Files an earlier save wrote are
    replaced without the flag.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # Written aside first: the files of this save are then known exactly, before any is moved in.
    with tempfile.TemporaryDirectory(prefix=".save_for_hub-", dir=folder) as staging:
        staging = Path(staging)
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        card = build_model_card(model, eval_results, dataset_name=dataset_name, repo_id=repo_id)
        (staging / "README.md").write_text(card, encoding="utf-8")
        written = _files(staging)
        others = sorted(set(_files(folder, leave_out=staging)) - set(written))
        if not overwrite and not _is_our_card(folder / "README.md"):
            # A card written by hand (or by another library) would be lost to the generated one.
            others.append("README.md (a model card this library did not write)")
        if others and not overwrite:
            raise FileExistsError(
                f"{folder} holds files this save does not write: {others}; push_to_hub would not upload "
                "them. Save into an empty folder, or pass overwrite=True to write beside them"
            )
        for name in written:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, folder / name)
    if others:
        logger.warning(
            f"{folder} also holds {others}: left as they were, not part of what push_to_hub uploads"
        )
    return written


def _check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"repo_id {repo_id!r} is not a Hub repository id ('user/name'): {err}") from err


def _is_our_card(path: Path) -> bool:
    """Whether `path` is absent, or a card whose metadata says this library wrote it."""
    if not path.is_file():
        return True
    text = path.read_text(encoding="utf-8", errors="replace")
    metadata = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    return f"library_name: {LIBRARY_NAME}" in metadata.splitlines()


def _files(folder: Path, leave_out: Path | None = None) -> list[str]:
    paths = (path for path in folder.rglob("*") if path.is_file())
    if leave_out is not None:
        paths = (path for path in paths if leave_out not in path.parents)
    return sorted(path.relative_to(folder).as_posix() for path in paths)


def check_can_push(repo_id: str, token: str | None = None, flag: str = "--push_to_hub") -> None:
    """Raise a `ValueError` naming every reason a push of `repo_id` at the end of a run would fail that
    can be known without the network: the Hub's offline mode, no token (`token`, `HF_TOKEN` or a
    `hf auth login`), a repository id the Hub refuses. Called before training, so that a run is not
    trained, evaluated and tested only to fail at its last line.

    Not checked, since that needs the network: that the Hub is reachable, that the token is valid and
    may write to `repo_id`'s namespace.
    """
    problems = []
    if is_offline_mode():
        problems.append("the Hub is in offline mode (HF_HUB_OFFLINE=1), so nothing can be uploaded")
    try:
        _check_repo_id(repo_id)
    except ValueError as err:
        problems.append(f"{err}; set --hub_model_id")
    if not (token or get_token()):
        problems.append("no Hugging Face token: pass --hub_token, set HF_TOKEN or run `hf auth login`")
    if problems:
        raise ValueError(f"{flag}: cannot push {repo_id!r} at the end of this run: {'; '.join(problems)}")


def push_to_hub(
    model: TurboForAudioTextClassification,
    processor: TurboProcessor,
    repo_id: str,
    eval_results: Mapping[str, Any] | None = None,
    token: str | None = None,
    private: bool | None = None,
    commit_message: str = DEFAULT_COMMIT_MESSAGE,
    dataset_name: str | None = None,
) -> Any:
    """Create `repo_id` if needed and upload the model, processor and model card in one commit.

    Returns the `CommitInfo` of `HfApi.upload_folder`.
    """
    api = HfApi(token=token)
    repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
    repo_id = getattr(repo_url, "repo_id", None) or repo_id
    with tempfile.TemporaryDirectory(prefix="turbo_hf_push_") as folder:
        save_for_hub(model, processor, folder, eval_results, dataset_name=dataset_name, repo_id=repo_id)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message)


__all__ = ["build_model_card", "check_can_push", "save_for_hub", "push_to_hub", "PIPELINE_TAG"]
