"""Datasets with `datasets.Audio` columns, built by `datasets` itself: the undecoded {"path", "bytes"}
and the decoded {"array", "sampling_rate"} forms are read through the collator path the recipes use,
the pipeline and the recipes; torchcodec decoders and decoding columns get an error naming the fix."""

import re

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TurboModelTester
from datasets import Audio, ClassLabel, Dataset, DatasetDict
from test_trainer import _args, encoders, splits  # noqa: F401  (encoders, splits: module fixtures)
from transformers import pipeline

from turbo_hf import DataCollatorForAudioText, DecodeAndCrop
from turbo_hf.arguments import DataArguments, ModelArguments
from turbo_hf.audio import AudioDecodingError, load_audio
from turbo_hf.experiment import train_and_evaluate

FIX = 'cast_column("audio", Audio(decode=False))'


@pytest.fixture
def clips(write_wav):
    return [write_wav(f"clip{i}.wav", seconds=0.5 + 0.1 * i, frequency=200 + 50 * i) for i in range(3)]


def _undecoded(paths) -> Dataset:
    rows = {"audio": [str(p) for p in paths], "text": ["hello", "world", "happy"], "label": [0, 1, 2]}
    return Dataset.from_dict(rows).cast_column("audio", Audio(decode=False))


def _bytes_only(paths) -> Dataset:
    """As a hub dataset holds audio: encoded bytes, and a path that is only a file name."""
    audio = [{"bytes": open(p, "rb").read(), "path": p.name} for p in paths]
    rows = {"audio": audio, "text": ["hello", "world", "happy"], "label": [0, 1, 2]}
    return Dataset.from_dict(rows).cast_column("audio", Audio(decode=False))


def _collate(tester, dataset) -> dict:
    # The recipes' path: a per-split DecodeAndCrop transform, then the collator.
    rows = dataset.with_transform(DecodeAndCrop(16000))
    return DataCollatorForAudioText(tester.processor)([rows[i] for i in range(len(rows))])


@pytest.mark.parametrize("build", [_undecoded, _bytes_only])
def test_undecoded_audio_columns_batch_as_their_files_do(tester, clips, build):
    dataset = build(clips)
    assert set(dataset[0]["audio"]) == {"path", "bytes"}
    batch = _collate(tester, dataset)
    from_files = DataCollatorForAudioText(tester.processor)(
        [
            {"audio": str(p), "text": t, "label": i}
            for i, (p, t) in enumerate(zip(clips, ["hello", "world", "happy"]))
        ]
    )
    for name in ("input_values", "audio_attention_mask", "input_ids", "labels"):
        torch.testing.assert_close(batch[name], from_files[name])


def test_decoded_array_dicts_are_resampled_to_the_feature_extractor_rate(tester, clips):
    waveform, _ = sf.read(clips[0], dtype="float32")
    eight_khz = load_audio(clips[0], 8000)
    dataset = Dataset.from_dict(
        {"audio": [{"array": eight_khz, "sampling_rate": 8000}], "text": ["hello"], "label": [0]}
    )
    batch = _collate(tester, dataset)
    assert batch["input_values"].shape[1] == pytest.approx(len(waveform), abs=2)


class _FakeAudioDecoder:
    """Stands for torchcodec's AudioDecoder (what datasets >= 4 decodes Audio columns into)."""


_FakeAudioDecoder.__module__ = "torchcodec.decoders._audio_decoder"
_FakeAudioDecoder.__name__ = "AudioDecoder"


def test_torchcodec_decoders_are_refused_with_the_fix(tester):
    with pytest.raises(AudioDecodingError, match=r"AudioDecoder.*" + re.escape(FIX)):
        load_audio(_FakeAudioDecoder(), 16000)
    with pytest.raises(AudioDecodingError, match="example #0"):
        DecodeAndCrop(16000)({"audio": [_FakeAudioDecoder()]})


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    folder = TurboModelTester().save_classifier(tmp_path_factory.mktemp("model"), ["a", "b", "c"])
    return pipeline("audio-text-classification", model=folder)


def test_the_pipeline_takes_rows_of_an_undecoded_audio_column(classifier, clips):
    dataset = _bytes_only(clips)
    from_rows = classifier([{"audio": row["audio"], "text": row["text"]} for row in dataset])
    from_files = classifier([{"audio": str(p), "text": t} for p, t in zip(clips, dataset["text"])])
    assert from_rows == from_files
    with pytest.raises(AudioDecodingError, match="Audio\\(decode=False\\)"):
        classifier({"audio": _FakeAudioDecoder(), "text": "hello"})


def _with_audio_feature(splits, feature) -> DatasetDict:  # noqa: F811
    return DatasetDict({name: split.cast_column("audio", feature) for name, split in splits.items()})


def test_the_recipes_train_on_an_undecoded_audio_column(tmp_path, encoders, splits):  # noqa: F811
    model_args = ModelArguments(
        audio_model_name_or_path=encoders[0], text_model_name_or_path=encoders[1], projection_dim=16
    )
    data = _with_audio_feature(splits, Audio(decode=False))
    assert isinstance(data["train"].features["label"], ClassLabel)
    metrics = train_and_evaluate(model_args, DataArguments(max_duration=0.5), _args(tmp_path), data)
    assert sum(map(sum, metrics["test_confusion_matrix"]["counts"])) == len(splits["test"])


def test_the_recipes_refuse_a_decoding_audio_column_before_training_and_name_the_fix(
    tmp_path,
    encoders,  # noqa: F811
    splits,  # noqa: F811
):
    model_args = ModelArguments(
        audio_model_name_or_path=encoders[0], text_model_name_or_path=encoders[1], projection_dim=16
    )
    data = _with_audio_feature(splits, Audio())
    with pytest.raises(
        ValueError,
        match="the train split: the 'audio' column .*" + re.escape(FIX),
    ):
        train_and_evaluate(model_args, DataArguments(), _args(tmp_path), data)
    assert not (tmp_path / "run").exists()  # nothing was built or trained


@pytest.mark.parametrize("rate", [None, 0, -16000, float("nan")])
def test_the_pipeline_names_an_unusable_sampling_rate_instead_of_assuming_the_models(classifier, rate):
    array = np.zeros(8000, np.float32)
    with pytest.raises(AudioDecodingError, match=r"the audio dict's 'sampling_rate' .*got"):
        classifier({"audio": {"array": array, "sampling_rate": rate}, "text": "hello"})
    with pytest.raises(AudioDecodingError, match=r"sampling rate given with the audio array .*got"):
        classifier({"audio": array, "sampling_rate": rate, "text": "hello"})


def test_the_pipeline_scales_int16_audio_as_its_float_samples(classifier):
    floats = (0.5 * np.sin(np.arange(8000) / 7)).astype(np.float32)
    pcm = np.round(floats * 32768).astype(np.int16)
    for audio in ((pcm, 16000), {"array": pcm, "sampling_rate": 16000}):
        waveform = classifier.preprocess({"audio": audio, "text": "hello"})["waveform"][0].numpy()
        np.testing.assert_allclose(waveform, floats, atol=1e-4)
