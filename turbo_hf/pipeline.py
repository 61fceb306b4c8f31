"""AudioTextClassificationPipeline: `pipeline("audio-text-classification", model=...)` for Turbo models.

After `import turbo_hf` (which calls `register_pipeline`), a folder written by `save_pretrained` of a
[`TurboForAudioTextClassification`] and its [`TurboProcessor`] is enough:

    >>> classifier = transformers.pipeline("audio-text-classification", model="path/to/model")
    >>> classifier({"audio": "utterance.wav", "text": "I am so glad to see you"})
    {'labels': [{'label': 'happy', 'score': 0.91}, {'label': 'neutral', 'score': 0.06}, ...],
     'transcript': 'I am so glad to see you'}

Audio is read by `turbo_hf.audio.load_audio` (the code path of training) and featurized by the
processor; the pipeline implements the four hooks of `transformers.Pipeline` and nothing else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from transformers import Pipeline, PreTrainedConfig
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.utils import logging

from .audio import AudioDecodingError, check_long_enough, load_window, resample
from .modeling_turbo import TurboForAudioTextClassification
from .pipeline_options import DEFAULT_MAX_DURATION, check_device, check_max_duration, check_positive_int
from .processing_turbo import TurboProcessor, check_text_length, text_length_limit

logger = logging.get_logger(__name__)

TASK = "audio-text-classification"

_INPUT_FORM = (
    "an audio-text-classification input is a dict {'audio': ..., 'text': str}; 'audio' is a file path, "
    "encoded bytes, a 1-D array (at the dict's 'sampling_rate', else the feature extractor's rate), an "
    "(array, sampling_rate) tuple or a dict with 'array' + 'sampling_rate', 'bytes' or 'path'"
)


# Other names for the input keys: a dict holding one of them instead of the key is a mistake, which
# would otherwise read the audio at the model's rate, or transcribe it with the recognizer.
_KEY_ALIASES = {
    "sampling_rate": ("sample_rate", "samplerate", "sr", "rate", "sampling_rate_hz", "sample_rate_hz"),
    "text": ("transcript", "transcription", "sentence", "texts", "txt"),
}


def _check_look_alike_keys(inputs: Mapping[str, Any], transcribes: bool) -> None:
    """Extra keys are allowed (rows of a dataset carry ids and labels), but not one that stands for an
    absent input key where it would matter: a rate beside a bare array (files, bytes and audio dicts
    carry their own), a transcript where no recognizer would take its place."""
    bare_array = isinstance(inputs["audio"], (np.ndarray, torch.Tensor, list))
    for key, aliases in _KEY_ALIASES.items():
        if key in inputs or (key == "sampling_rate" and not bare_array) or (key == "text" and transcribes):
            continue
        near = [name for name in inputs if isinstance(name, str) and name.lower() in aliases]
        if near:
            raise ValueError(
                f"{TASK} input has {near[0]!r} but no {key!r}: the key is {key!r} ({_INPUT_FORM})"
            )


class AudioTextClassificationPipeline(Pipeline):
    """Classify (audio, transcript) pairs with a [`TurboForAudioTextClassification`].

    Inputs: one dict or a list of dicts `{"audio": ..., "text": str}`, where `audio` is a file path,
    encoded bytes, a `datasets.Audio` dict (`array` + `sampling_rate`, or `bytes` / `path`), an
    `(array, sampling_rate)` tuple, or a bare 1-D array whose rate is the dict's `"sampling_rate"` key
    (without that key, the array is taken to be at the feature extractor's rate already).

    Without a transcript (`"text"` missing or None) the audio is transcribed by `asr_model`: an
    automatic-speech-recognition pipeline, or a model id / folder to build one from. Without either, a
    `ValueError` says which is needed.

    Output per input, whatever the options: `{"labels": [{"label": str, "score": float}, ...],
    "transcript": str}`: the labels with their softmax scores, highest first (`top_k=None`: all
    labels), and the transcript the classifier read (the given text, or what `asr_model` heard).
    Scores are those of the model in evaluation mode: the pipeline puts the model in `eval()`.

    A clip longer than `max_duration` seconds (default `DEFAULT_MAX_DURATION`, 30 s; None keeps whole
    clips) is cropped to its centre, as evaluation crops with `eval_max_duration`, before it is
    transcribed and classified, and a warning says so (once per limit): attention costs grow with the
    square of the length, so a 10-minute clip would otherwise take minutes and gigabytes. The option
    can be given when the pipeline is built or per call, like `top_k`.

    `batch_size > 1` featurizes a batch's audio together through the processor, as the training
    collator does (to its longest clip; Whisper with `audio_window="batch"`: to the batch window), and
    pads its transcripts with transformers' padding collator (so the tokenizer must pad on the right). Encoders whose front end
    normalises over the whole padded input (wav2vec2-base, `feat_extract_norm="group"`) then give
    slightly different scores than one input at a time, as in evaluation with the Trainer;
    layer-normed encoders do not. Transcription runs one input at a time.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    def __init__(self, *args, asr_model: Any = None, max_text_length: int | None = None, **kwargs):
        if kwargs.get("batch_size") is not None:
            check_positive_int(kwargs["batch_size"], "batch_size")
        # Before the model is moved: torch's own errors for a device this machine lacks name neither.
        check_device(kwargs.get("device"))
        super().__init__(*args, **kwargs)
        if not isinstance(self.processor, TurboProcessor):
            if self.tokenizer is None or self.feature_extractor is None:
                raise ValueError(
                    f"{TASK} needs the model's TurboProcessor: save it beside the model "
                    "(processor.save_pretrained(folder)) or pass processor=..."
                )
            self.processor = TurboProcessor(
                feature_extractor=self.feature_extractor,
                tokenizer=self.tokenizer,
                audio_window=self.model.config.audio_window,
            )
        # Inference must featurize as training did (TurboConfig.audio_window).
        self.processor.check_model_config(self.model.config)
        self.model.eval()
        self.asr = self._build_asr(asr_model)
        max_text_length = check_text_length(max_text_length, self.tokenizer, "max_text_length")
        self.max_text_length = max_text_length or text_length_limit(
            self.tokenizer, self.model.config.text_config
        )

    def _build_asr(self, asr_model: Any) -> Pipeline | None:
        if asr_model is None or isinstance(asr_model, Pipeline):
            return asr_model
        from transformers import pipeline

        return pipeline("automatic-speech-recognition", model=asr_model, device=self.device)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save the model and its TurboProcessor, so that `pipeline(TASK, model=save_directory)` loads them.

        The base class would also record this class in the config as remote code (`custom_pipelines`),
        which the factory then fails to resolve; `import turbo_hf` registers the task instead.
        """
        self.model.save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)

    @property
    def sampling_rate(self) -> int:
        # The base class checks options given to the constructor before a TurboProcessor wraps a bare
        # feature extractor: its rate is the same.
        if isinstance(self.processor, TurboProcessor):
            return self.processor.sampling_rate
        return self.feature_extractor.sampling_rate

    def crop_length(self, max_duration: float | None) -> int | None:
        """Samples (at `sampling_rate`) that a clip keeps under `max_duration` seconds; None keeps all.

        Raises TypeError / ValueError unless `max_duration` is a positive, finite number or None, and
        ValueError when it keeps fewer samples than the audio encoder needs.
        """
        max_duration = check_max_duration(max_duration)
        if max_duration is None:
            return None
        length = int(round(max_duration * self.sampling_rate))
        needed = self.model.min_audio_samples
        if needed is not None and length < needed:
            raise ValueError(
                f"max_duration={max_duration:g} s keeps {length} samples at {self.sampling_rate} Hz; the "
                f"audio encoder needs at least {needed} samples ({needed / self.sampling_rate:.4f} s)"
            )
        return length

    def __call__(
        self,
        inputs: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """Classify one input or a list of inputs (see the class docstring for their form).

        Args:
            inputs: `{"audio": ..., "text": str}` or a list of them; an empty list gives an empty list.
            top_k: number of labels returned per input, best first (a positive integer); None (default)
                returns all.
            max_duration: seconds of each clip classified (its centre); None keeps whole clips. Default:
                the value the pipeline was built with, else `DEFAULT_MAX_DURATION` (30 s).
            batch_size: inputs featurized and run through the model together (a positive integer).
        """
        if batch_size is not None:
            check_positive_int(batch_size, "batch_size")
        if isinstance(inputs, list) and not inputs:
            # The base class reads inputs[0]; with nothing to classify the options are still checked.
            kwargs.pop("num_workers", None)
            self._sanitize_parameters(**kwargs)
            return []
        return super().__call__(inputs, batch_size=batch_size, **kwargs)

    def _sanitize_parameters(self, top_k: int | None = None, **kwargs):
        preprocess_params, postprocess_params = {}, {}
        # Absent, not None: None is a value (keep whole clips) that overrides the constructor's.
        if "max_duration" in kwargs:
            max_duration = kwargs.pop("max_duration")
            self.crop_length(max_duration)
            preprocess_params["max_duration"] = max_duration
        if kwargs:
            raise TypeError(
                f"{TASK} pipeline got unexpected arguments {sorted(kwargs)}; it takes top_k, max_duration "
                "and batch_size"
            )
        if top_k is not None:
            postprocess_params["top_k"] = check_positive_int(top_k, "top_k")
        return preprocess_params, {}, postprocess_params

    def preprocess(
        self, inputs: Mapping[str, Any], max_duration: float | None = DEFAULT_MAX_DURATION
    ) -> dict[str, Any]:
        """Decode one input, transcribe it if it has no text, and featurize it."""
        if not isinstance(inputs, Mapping) or "audio" not in inputs:
            found = sorted(inputs) if isinstance(inputs, Mapping) else type(inputs).__name__
            raise ValueError(f"{_INPUT_FORM}; got {found}")
        _check_look_alike_keys(inputs, transcribes=self.asr is not None)
        text = inputs.get("text")
        if text is None and self.asr is None:
            raise ValueError(
                f"{TASK} needs a transcript: pass {{'audio': ..., 'text': '...'}}, or build the pipeline "
                "with asr_model=... (an automatic-speech-recognition pipeline or model id) to transcribe the audio"
            )
        if text is not None and not isinstance(text, str):
            raise ValueError(f"'text' must be a string; got {type(text).__name__}")
        # Only an absent key means the model's rate: 0 or None is a mistake load_audio names.
        source_rate = inputs.get("sampling_rate", self.sampling_rate)
        limit = self.crop_length(max_duration)
        try:
            # Cropped before resampling: a long clip costs what its window costs.
            waveform, length = load_window(inputs["audio"], self.sampling_rate, limit, source_rate)
            check_long_enough(waveform, self.model.min_audio_samples, self.sampling_rate)
        except AudioDecodingError as err:
            raise AudioDecodingError(f"{TASK} input: {err}") from err
        if limit is not None and length > limit:
            logger.warning_once(
                f"{TASK}: clips longer than max_duration={max_duration:g} s are cropped to their centre "
                f"{max_duration:g} s (max_duration=None keeps whole clips)"
            )
        if text is None:
            text = self._transcribe(waveform)
        tokens = self.processor(text=[text], return_tensors="pt", max_length=self.max_text_length)
        # The audio is featurized per batch, in `_forward`: a window that depends on the batch
        # (TurboConfig.audio_window="batch") cannot be padded item by item.
        waveform = torch.from_numpy(np.ascontiguousarray(waveform))[None]
        return {
            **tokens,
            "waveform": waveform,
            "audio_length": torch.tensor([waveform.shape[1]]),
            "transcript": text,
        }

    def _transcribe(self, waveform: np.ndarray) -> str:
        asr_rate = self.asr.feature_extractor.sampling_rate
        audio = {"raw": resample(waveform, self.sampling_rate, asr_rate), "sampling_rate": asr_rate}
        return self.asr(audio)["text"].strip()

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, Any]:
        model_inputs = dict(model_inputs)
        transcript = model_inputs.pop("transcript")  # a string, or a batch's list of them
        # The batch's audio through the processor, exactly as the training collator featurizes it.
        waveforms, lengths = model_inputs.pop("waveform").cpu(), model_inputs.pop("audio_length").tolist()
        audio = self.processor(
            audio=[row[:length].numpy() for row, length in zip(waveforms, lengths)],
            sampling_rate=self.sampling_rate,
            return_tensors="pt",
        )
        model_inputs.update({name: tensor.to(self.device) for name, tensor in audio.items()})
        # `logits` first: the base iterator reads the batch size from the first value.
        return {"logits": self.model(**model_inputs).logits, "transcript": transcript}

    def postprocess(self, model_outputs: dict[str, Any], top_k: int | None = None) -> dict[str, Any]:
        probabilities = torch.softmax(model_outputs["logits"][0].float(), dim=-1)
        top_k = probabilities.shape[-1] if top_k is None else min(top_k, probabilities.shape[-1])
        scores, ids = probabilities.topk(top_k)
        id2label = self.model.config.id2label
        labels = [
            {"label": id2label[int(index)], "score": float(score)}
            for score, index in zip(scores.tolist(), ids.tolist())
        ]
        return {"labels": labels, "transcript": model_outputs["transcript"]}


def label_names(config: PreTrainedConfig) -> list[str]:
    """A classifier's class names in id order, from its config's `id2label`."""
    return [str(config.id2label[index]) for index in range(config.num_labels)]


def register_pipeline() -> None:
    """Register the "audio-text-classification" task with transformers' `pipeline()` factory."""
    registered = PIPELINE_REGISTRY.supported_tasks.get(TASK)
    if registered is not None and registered.get("impl") is AudioTextClassificationPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=AudioTextClassificationPipeline,
        pt_model=TurboForAudioTextClassification,
        type="multimodal",
    )


__all__ = ["AudioTextClassificationPipeline", "label_names", "register_pipeline", "TASK"]
