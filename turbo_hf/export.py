"""ONNX export of a trained Turbo model: the eval-mode forward as one graph, run without torch.

`export_onnx(model_or_dir, out_dir)` (and `turbo-hf export MODEL_DIR --onnx OUT_DIR`) writes

    OUT_DIR/model.onnx          audio + transcript in; logits, audio_embeds, text_embeds out
    OUT_DIR/onnx_export.json    the graph's inputs and outputs with their axes, labels, the check
    OUT_DIR/README.md           the same for a reader, with an onnxruntime example
    OUT_DIR/processor_config.json, tokenizer files   the processor, as save_pretrained writes it

The graph takes what the saved processor returns (`input_values` or `input_features`,
`audio_attention_mask`, `input_ids`, `attention_mask`[, `token_type_ids`]); batch, audio length and
text length are dynamic axes, except where the processor pads to a fixed window (Whisper).

It is traced with `torch.export` and translated by torch's ONNX exporter (the dynamo path, the
default of `torch.onnx.export` since torch 2.9; the TorchScript exporter is deprecated). torch.export
traces symbolic shapes: an axis that the model's code fixes is seen and reported here, where a
TorchScript trace would silently bake the example's sizes and the Python branches taken for it
into the graph. After writing, the graph is run with onnxruntime on a second batch of another size
and other lengths and must match the PyTorch forward within `atol`.
"""

from __future__ import annotations

import importlib
import json
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers.utils import logging

from .configuration_turbo import TurboConfig
from .export_info import (
    AUDIO_AXIS,
    BATCH_AXIS,
    EXPORT_INFO_FILE,
    ONNX_FILE,
    TEXT_AXIS,
    export_info,
    export_readme,
)
from .modeling_turbo import TurboClassifierOutput, TurboForAudioTextClassification
from .processing_turbo import TurboProcessor

logger = logging.get_logger(__name__)

OUTPUT_NAMES = ("logits", "audio_embeds", "text_embeds")
# The graph is traced on one batch and checked on another: of other sizes and lengths, so that an
# axis the trace fixed shows up, and none of size 1 (torch.export treats sizes 0 and 1 as special).
_TRACE_SECONDS = (1.0, 0.6)
_CHECK_SECONDS = (0.4, 1.3, 0.8)
_TRACE_TEXTS = ("hello world", "this transcript is a little longer than the other one")
_CHECK_TEXTS = ("a short one", "hello", "what a day it has been today")
_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


class OnnxExportError(ValueError):
    """The model or its folder cannot be exported as asked; the message says why and what to do."""


def export_onnx(
    model_or_dir: TurboForAudioTextClassification | str | Path,
    out_dir: str | Path,
    processor: TurboProcessor | None = None,
    *,
    opset: int | None = None,
    atol: float = 1e-4,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write an ONNX graph of the model's eval-mode forward, its processor and a description to `out_dir`.

    `model_or_dir` is a model or a folder written by `save_pretrained` that also holds the processor;
    a model object needs `processor`. The graph's logits must match PyTorch's within `atol` on a
    check batch run with onnxruntime. Returns what `onnx_export.json` holds. Raises
    OnnxExportError, before any tracing where it can, when the onnx packages are missing, the
    folders are wrong, or the model cannot be exported (e.g. half precision, an axis fixed by code).
    """
    _require_onnx_packages()
    out_dir = _check_output_dir(out_dir, overwrite)
    model, processor = _load_model_and_processor(model_or_dir, processor)
    _check_exportable(model)
    trace_batch = _example_batch(processor, _TRACE_SECONDS, _TRACE_TEXTS)
    check_batch = _example_batch(processor, _CHECK_SECONDS, _CHECK_TEXTS)
    axes = _dynamic_axes(processor, trace_batch, check_batch)

    started = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(**check_batch)
        program = _trace(model, trace_batch, axes)
    finally:
        model.train(was_training)
    out_dir.mkdir(exist_ok=True)
    graph_path = out_dir / ONNX_FILE
    opset_used = _write_onnx(program, _graph_input_names(program, trace_batch), axes, graph_path, opset)
    differences, session = _compare_with_onnxruntime(graph_path, check_batch, expected, atol)
    processor.save_pretrained(out_dir)
    seconds = time.perf_counter() - started

    info = export_info(model, processor, session, trace_batch, axes, opset_used)
    info["check"] = {"max_abs_difference": differences, "atol": atol, "input_shapes": _shapes(check_batch)}
    (out_dir / EXPORT_INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (out_dir / "README.md").write_text(export_readme(info), encoding="utf-8")
    logger.info(
        "exported %s in %.1f s; largest |logit difference| %.2g", graph_path, seconds, differences["logits"]
    )
    return info


# -- checks made before any tracing -------------------------------------------------------------------
def _require_onnx_packages() -> None:
    missing = []
    for name in _PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise OnnxExportError(
            f"ONNX export needs the package(s) {', '.join(missing)}: pip install 'turbo_hf[onnx]'"
        )


def _check_output_dir(out_dir: str | Path, overwrite: bool) -> Path:
    out_dir = Path(out_dir)
    if not out_dir.parent.is_dir():
        raise OnnxExportError(f"the output folder's parent {out_dir.parent} does not exist")
    if out_dir.exists() and not out_dir.is_dir():
        raise OnnxExportError(f"the output folder {out_dir} is a file")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise OnnxExportError(f"the output folder {out_dir} is not empty (pass overwrite=True / --overwrite)")
    return out_dir


def _load_model_and_processor(
    model_or_dir: TurboForAudioTextClassification | str | Path, processor: TurboProcessor | None
) -> tuple[TurboForAudioTextClassification, TurboProcessor]:
    if isinstance(model_or_dir, TurboForAudioTextClassification):
        if processor is None:
            raise OnnxExportError(
                "export_onnx(model, ...) needs the model's processor (processor=...), which is saved beside "
                "the graph so that the inputs can be made without torch"
            )
        return model_or_dir, processor
    folder = Path(model_or_dir)
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise OnnxExportError(f"the model folder {folder} does not exist")
    if not config_file.is_file():
        raise OnnxExportError(f"{folder} has no config.json: give a folder written by save_pretrained")
    model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    if model_type != TurboConfig.model_type:
        raise OnnxExportError(
            f"{config_file}: model_type is {model_type!r}, expected {TurboConfig.model_type!r} "
            "(a TurboForAudioTextClassification folder)"
        )
    if processor is None:
        try:
            processor = TurboProcessor.from_pretrained(folder)
        except (OSError, ValueError, TypeError) as err:
            raise OnnxExportError(
                f"{folder} holds no TurboProcessor (save the processor with the model): {_first_line(err)}"
            ) from err
    try:
        model = TurboForAudioTextClassification.from_pretrained(folder)
    except (OSError, ValueError) as err:
        raise OnnxExportError(f"cannot load the model in {folder}: {_first_line(err)}") from err
    return model, processor


def _check_exportable(model: TurboForAudioTextClassification) -> None:
    parameter = next(model.parameters())
    if parameter.dtype != torch.float32:
        raise OnnxExportError(
            f"the model's weights are {parameter.dtype}; the export is float32 (call model.float() first)"
        )
    if parameter.device.type != "cpu":
        raise OnnxExportError(
            f"the model is on {parameter.device}; the export traces on the CPU (call model.to('cpu') first)"
        )


# -- example inputs and axes -------------------------------------------------------------------------
def _example_batch(
    processor: TurboProcessor, seconds: tuple[float, ...], texts: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """A batch made by the processor from noise and `texts`, in the order of its `model_input_names`."""
    rate = processor.sampling_rate
    rng = np.random.default_rng(0)
    waveforms = [0.1 * rng.standard_normal(int(rate * length)).astype(np.float32) for length in seconds]
    batch = processor(audio=waveforms, text=list(texts), sampling_rate=rate, return_tensors="pt")
    return {name: batch[name] for name in processor.model_input_names if name in batch}


def _dynamic_axes(
    processor: TurboProcessor, trace_batch: dict[str, torch.Tensor], check_batch: dict[str, torch.Tensor]
) -> dict[str, dict[int, str]]:
    """Named dynamic axes per input: those where the processor's two batches differ in size.

    The processor decides: it pads audio to the batch's longest clip (dynamic) or to a fixed window
    (Whisper's 30 s: the graph then takes that window only).
    """
    audio_inputs = {processor.audio_input_name, "audio_attention_mask"}
    axes = {}
    for name, tensor in trace_batch.items():
        varying = [
            axis for axis in range(tensor.dim()) if tensor.shape[axis] != check_batch[name].shape[axis]
        ]
        length_axis = AUDIO_AXIS if name in audio_inputs else TEXT_AXIS
        axes[name] = {axis: BATCH_AXIS if axis == 0 else length_axis for axis in varying}
    return axes


# -- tracing ------------------------------------------------------------------------------------------
class _EvalOutputs(nn.Module):
    """The eval-mode forward of a Turbo model as the three tensors the graph returns."""

    def __init__(self, model: TurboForAudioTextClassification):
        super().__init__()
        self.model = model

    def forward(
        self,
        audio_inputs: torch.Tensor,
        audio_attention_mask: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # The model's forward splits its embeddings into views with `.split(batch_size)`; traced with a
        # symbolic batch that becomes an ONNX SplitToSequence, on which the exporter's optimizer
        # (onnxscript 0.7) fails. In eval mode there is one view, so this composes the forward's
        # public parts instead; the check against forward() after writing verifies that they agree.
        audio = self.model.get_audio_features(audio_inputs, audio_attention_mask)
        text = self.model.get_text_features(input_ids, attention_mask, token_type_ids)
        return self.model.classifier(torch.cat([audio, text], dim=-1)), audio, text


@contextmanager
def _without_audio_length_check(model: TurboForAudioTextClassification) -> Iterator[None]:
    # The audio adapter checks every row's audio length by reading the mask on the host (`.item()`):
    # a branch on data that torch.export cannot trace. The check has run on the eager pass over the
    # example batch; the graph itself does not check lengths (onnx_export.json names the minimum).
    owner, name = model.audio_adapter, "check_inputs"
    setattr(owner, name, lambda *args, **kwargs: None)
    try:
        yield
    finally:
        delattr(owner, name)


def _signature_kwargs(batch: dict[str, torch.Tensor]) -> dict[str, str]:
    """The wrapper's parameter for each input of a processor batch (whose first input is the audio)."""
    audio_input_name = next(iter(batch))
    return {name: "audio_inputs" if name == audio_input_name else name for name in batch}


def _trace(
    model: TurboForAudioTextClassification, batch: dict[str, torch.Tensor], axes: dict[str, dict[int, str]]
) -> torch.export.ExportedProgram:
    parameters = _signature_kwargs(batch)
    kwargs = {parameters[name]: tensor for name, tensor in batch.items()}
    dynamic_shapes = {
        parameters[name]: {axis: torch.export.Dim.DYNAMIC for axis in named} or None
        for name, named in axes.items()
    }
    with _without_audio_length_check(model):
        try:
            return torch.export.export(
                _EvalOutputs(model), (), kwargs=kwargs, dynamic_shapes=dynamic_shapes, strict=False
            )
        except Exception as err:  # torch.export raises many types; say which model failed and why
            fixed = _fixed_axis(err, parameters, axes)
            if fixed is not None:
                raise OnnxExportError(
                    f"the model's code fixes the {fixed}, so the graph could not take other sizes "
                    "(TORCH_LOGS='+dynamic' shows the guard that fixes it)"
                ) from err
            config = model.config
            raise OnnxExportError(
                f"torch.export cannot trace the {config.audio_config.model_type} + "
                f"{config.text_config.model_type} model: {_first_line(err)}"
            ) from err


def _fixed_axis(err: Exception, parameters: dict[str, str], axes: dict[str, dict[int, str]]) -> str | None:
    """'batch axis of input_values to the traced size 2' when torch.export made that axis a constant."""
    pattern = (
        r"L\['(\w+)'\]\.size\(\)\[(\d+)\] as dynamic but your code specialized it to be a constant \((\d+)\)"
    )
    match = re.search(pattern, str(err))
    if match is None:
        return None
    parameter, axis, size = match.group(1), int(match.group(2)), match.group(3)
    name = {parameter: name for name, parameter in parameters.items()}.get(parameter, parameter)
    return f"{axes.get(name, {}).get(axis, f'axis {axis}')} axis of {name} to the traced size {size}"


def _graph_input_names(program: torch.export.ExportedProgram, batch: dict[str, torch.Tensor]) -> list[str]:
    """The processor's name of each traced input, in the program's order."""
    by_parameter = {parameter: name for name, parameter in _signature_kwargs(batch).items()}
    return [by_parameter[parameter] for parameter in program.graph_signature.user_inputs]


def _write_onnx(
    program: torch.export.ExportedProgram,
    input_names: list[str],
    axes: dict[str, dict[int, str]],
    path: Path,
    opset: int | None,
) -> int:
    """Translate the traced program to ONNX, name its dynamic axes, save it; return the opset used."""
    try:
        with warnings.catch_warnings():
            # Inputs sharing a traced size (the batch) share an axis name; the exporter says so per input.
            warnings.filterwarnings("ignore", message=".*shares the same shape constraints.*")
            onnx_program = torch.onnx.export(
                program,
                input_names=input_names,
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=tuple(axes[name] or None for name in input_names),
                opset_version=opset,
                verbose=False,
            )
    except Exception as err:  # the exporter raises its own error types per step
        raise OnnxExportError(f"torch.onnx could not translate the traced model: {_first_line(err)}") from err
    onnx_program.save(str(path))
    return onnx_program.model.opset_imports[""]


# -- check and description ------------------------------------------------------------------------------
def _compare_with_onnxruntime(
    path: Path, batch: dict[str, torch.Tensor], expected: TurboClassifierOutput, atol: float
) -> tuple[dict[str, float], Any]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(list(OUTPUT_NAMES), {name: tensor.numpy() for name, tensor in batch.items()})
    differences = {
        name: float(np.abs(output - getattr(expected, name).numpy()).max())
        for name, output in zip(OUTPUT_NAMES, outputs)
    }
    if differences["logits"] > atol:
        raise OnnxExportError(
            f"the ONNX graph's logits differ from PyTorch's by up to {differences['logits']:.3g} (> atol {atol}) "
            f"on a check batch of shapes {_shapes(batch)}; {path} is left for inspection"
        )
    return differences, session


def _shapes(batch: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {name: list(tensor.shape) for name, tensor in batch.items()}


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# -- command line -------------------------------------------------------------------------------------
__all__ = [
    "export_onnx",
    "OnnxExportError",
    "ONNX_FILE",
    "EXPORT_INFO_FILE",
]
