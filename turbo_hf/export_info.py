"""What an ONNX export folder says about its graph: `onnx_export.json` for programs, README.md for people."""

from __future__ import annotations

from typing import Any

import torch
import transformers

from . import __version__
from .modeling_turbo import TurboForAudioTextClassification
from .processing_turbo import TurboProcessor

ONNX_FILE = "model.onnx"
EXPORT_INFO_FILE = "onnx_export.json"
BATCH_AXIS, AUDIO_AXIS, TEXT_AXIS = "batch", "audio_length", "text_length"


def export_info(
    model: TurboForAudioTextClassification,
    processor: TurboProcessor,
    session,
    trace_batch: dict[str, torch.Tensor],
    axes: dict[str, dict[int, str]],
    opset: int,
) -> dict[str, Any]:
    """The graph's inputs and outputs (names, dtypes, axes as the onnxruntime `session` reads them),
    how to make its inputs, the labels and the versions used. `axes` are the named dynamic axes."""
    config = model.config
    audio_input = processor.audio_input_name
    audio_axis_fixed = trace_batch[audio_input].dim() - 1 not in axes[audio_input]

    return {
        "graph": ONNX_FILE,
        "opset": opset,
        "inputs": [
            {"name": item.name, "dtype": str(trace_batch[item.name].numpy().dtype), "shape": item.shape}
            for item in session.get_inputs()
        ],
        "outputs": [
            {"name": item.name, "dtype": "float32", "shape": item.shape} for item in session.get_outputs()
        ],
        "axes": {
            BATCH_AXIS: "rows of the batch",
            AUDIO_AXIS: f"padded length of {processor.audio_input_name} (the last axis) and of audio_attention_mask",
            TEXT_AXIS: "padded token count of the transcripts",
        },
        "audio_input": processor.audio_input_name,
        "audio_padding": "max_length" if audio_axis_fixed else "longest",
        "sampling_rate": processor.sampling_rate,
        "min_audio_samples": model.receptive_field_samples,
        "id2label": {str(index): label for index, label in config.id2label.items()},
        "audio_model_type": config.audio_config.model_type,
        "text_model_type": config.text_config.model_type,
        "exported_with": {
            "turbo_hf": __version__,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }


def export_readme(info: dict[str, Any]) -> str:
    """README.md of an export folder, from what `onnx_export.json` holds (with its "check")."""

    def rows(items: list[dict[str, Any]]) -> str:
        return "\n".join(f"| `{item['name']}` | {item['dtype']} | {item['shape']} |" for item in items)

    audio, rate, check = info["audio_input"], info["sampling_rate"], info["check"]
    padding = (
        "the feature extractor's fixed window"
        if info["audio_padding"] == "max_length"
        else "the longest clip of the batch"
    )
    return f"""# Turbo audio + text classifier, as ONNX

`{info["graph"]}` (opset {info["opset"]}) is the eval-mode forward of a {info["audio_model_type"]} + \
{info["text_model_type"]} TurboForAudioTextClassification, exported by turbo_hf {info["exported_with"]["turbo_hf"]} \
(torch {info["exported_with"]["torch"]}). The folder also holds its processor (feature extractor and \
tokenizer); `{EXPORT_INFO_FILE}` says what this page says, for programs.

| input | dtype | shape |
|---|---|---|
{rows(info["inputs"])}

| output | dtype | shape |
|---|---|---|
{rows(info["outputs"])}

Named axes are dynamic, numbers fixed. Audio is at {rate} Hz, padded to {padding}; each clip needs at
least {info["min_audio_samples"]} samples (the graph does not check this). Labels: {info["id2label"]}.

```python
import onnxruntime
from transformers import AutoFeatureExtractor, AutoTokenizer  # no torch needed

folder = "path/to/this/folder"
feature_extractor = AutoFeatureExtractor.from_pretrained(folder)
tokenizer = AutoTokenizer.from_pretrained(folder)
audio = feature_extractor(waveforms, sampling_rate={rate}, padding="{info["audio_padding"]}",
                          return_attention_mask=True, return_tensors="np")
text = tokenizer(transcripts, padding=True, return_tensors="np")
inputs = {{"{audio}": audio["{audio}"], "audio_attention_mask": audio["attention_mask"], **text}}
session = onnxruntime.InferenceSession(f"{{folder}}/{info["graph"]}")
logits, audio_embeds, text_embeds = session.run(None, inputs)
```

With turbo_hf installed, `TurboProcessor.from_pretrained(folder)(audio=waveforms, text=transcripts,
return_tensors="np")` makes the same inputs. At export, onnxruntime's logits on a check batch were
within {check["atol"]} of PyTorch's (largest difference {check["max_abs_difference"]["logits"]:.2g}).
"""


__all__ = ["export_info", "export_readme", "ONNX_FILE", "EXPORT_INFO_FILE"]
