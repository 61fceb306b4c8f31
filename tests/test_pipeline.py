"""The "audio-text-classification" pipeline: scores equal the model's softmax, batching, ASR."""

import string

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import BAD_MAX_DURATIONS, TurboModelTester
from transformers import (
    AutoModel,
    AutoProcessor,
    WhisperForConditionalGeneration,
    WhisperTokenizer,
    pipeline,
)

from turbo_hf import TurboForAudioTextClassification, TurboProcessor
from turbo_hf.audio import AudioDecodingError, load_audio
from turbo_hf.pipeline import TASK, AudioTextClassificationPipeline, register_pipeline
from turbo_hf.testing.tiny_encoders import tiny_audio_config, tiny_feature_extractor

LABELS = ["neutral", "happy", "sad"]


def save_tiny_classifier(folder) -> str:
    """A tiny Turbo model + processor with named labels. Layer-normed front end: padding in a batch
    leaves each row's output unchanged, so batched and one-by-one results can be compared."""
    tester = TurboModelTester(audio_overrides={"feat_extract_norm": "layer"})
    return tester.save_classifier(folder, LABELS)


def save_tiny_whisper(folder) -> str:
    """A random 2-layer Whisper ASR checkpoint with a 26-letter vocabulary, built offline."""
    # Whisper's vocabulary: text tokens, then the special tokens; ids past <|notimestamps|> are timestamps.
    tokens = [*string.ascii_lowercase, "<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"]
    vocab = {token: index for index, token in enumerate(tokens)}
    end, start = vocab["<|endoftext|>"], vocab["<|startoftranscript|>"]
    special = {name: "<|endoftext|>" for name in ("unk_token", "bos_token", "eos_token", "pad_token")}
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[], **special)
    config = tiny_audio_config(
        "whisper",
        vocab_size=len(vocab),
        pad_token_id=end,
        bos_token_id=end,
        eos_token_id=end,
        decoder_start_token_id=start,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    # Random weights would stop at once or emit special tokens only: force a few letters out.
    model.generation_config.suppress_tokens = [end, start, vocab["<|notimestamps|>"]]
    model.generation_config.max_length = 8
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    tiny_feature_extractor("whisper").save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_classifier(tmp_path_factory.mktemp("turbo_model"))


@pytest.fixture(scope="module")
def classifier(model_dir):
    register_pipeline()
    return pipeline(TASK, model=model_dir, device="cpu")


@pytest.fixture(scope="module")
def wav_files(tmp_path_factory):
    """Two 16 kHz files of different lengths and one 8 kHz file."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    paths = {}
    for name, seconds, rate in [("a16k", 0.5, 16000), ("b16k", 0.3, 16000), ("c8k", 0.4, 8000)]:
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], (0.1 * rng.standard_normal(int(seconds * rate))).astype(np.float32), rate)
    return paths


def direct_scores(model_dir, audio, text) -> dict[str, float]:
    """Softmax of the model's logits on processor(load_audio(...)) outputs: the reference."""
    model = TurboForAudioTextClassification.from_pretrained(model_dir).eval()
    processor = TurboProcessor.from_pretrained(model_dir)
    waveform = load_audio(audio, processor.sampling_rate)
    inputs = processor(audio=[waveform], text=[text], sampling_rate=processor.sampling_rate)
    with torch.no_grad():
        probabilities = model(**inputs).logits.softmax(-1)[0]
    return {LABELS[index]: float(p) for index, p in enumerate(probabilities)}


def as_dict(output: dict) -> dict[str, float]:
    return {item["label"]: item["score"] for item in output["labels"]}


def test_pipeline_factory_loads_model_and_processor_from_folder(classifier):
    assert isinstance(classifier, AudioTextClassificationPipeline)
    assert isinstance(classifier.model, TurboForAudioTextClassification)
    assert isinstance(classifier.processor, TurboProcessor)
    assert not classifier.model.training


def test_auto_classes_load_saved_folder_without_remote_code(model_dir):
    assert isinstance(AutoModel.from_pretrained(model_dir), TurboForAudioTextClassification)
    assert isinstance(AutoProcessor.from_pretrained(model_dir), TurboProcessor)


@pytest.mark.parametrize("name", ["a16k", "c8k"])
def test_scores_equal_softmax_of_model_logits(classifier, model_dir, wav_files, name):
    output = classifier({"audio": str(wav_files[name]), "text": "hello world"})
    assert sorted(output) == ["labels", "transcript"] and output["transcript"] == "hello world"
    expected = direct_scores(model_dir, str(wav_files[name]), "hello world")
    assert [item["label"] for item in output["labels"]] == sorted(expected, key=expected.get, reverse=True)
    np.testing.assert_allclose(
        [as_dict(output)[label] for label in LABELS], [expected[label] for label in LABELS], rtol=1e-5
    )
    assert sum(item["score"] for item in output["labels"]) == pytest.approx(1.0, abs=1e-5)


def test_audio_forms_give_the_same_scores(classifier, wav_files):
    path = wav_files["c8k"]
    waveform, rate = sf.read(path, dtype="float32")
    reference = as_dict(classifier({"audio": str(path), "text": "sad"}))
    forms = [
        path.read_bytes(),
        {"array": waveform, "sampling_rate": rate},
        (waveform, rate),
        {"path": str(path)},
    ]
    for audio in forms:
        scores = as_dict(classifier({"audio": audio, "text": "sad"}))
        np.testing.assert_allclose([scores[k] for k in LABELS], [reference[k] for k in LABELS], rtol=1e-5)
    # A bare array needs "sampling_rate" beside it, else it is taken to be at the model's 16 kHz.
    at_16k = load_audio(str(path), 16000)
    bare = as_dict(classifier({"audio": waveform, "sampling_rate": rate, "text": "sad"}))
    bare_16k = as_dict(classifier({"audio": at_16k, "text": "sad"}))
    for scores in (bare, bare_16k):
        np.testing.assert_allclose([scores[k] for k in LABELS], [reference[k] for k in LABELS], rtol=1e-5)


def test_list_inputs_batched_and_unbatched_agree(classifier, wav_files):
    inputs = [
        {"audio": str(wav_files["a16k"]), "text": "hello world"},
        {"audio": str(wav_files["b16k"]), "text": "happy"},
        {"audio": str(wav_files["c8k"]), "text": "sad and angry world"},
    ]
    one_by_one = classifier(inputs, batch_size=1)
    batched = classifier(inputs, batch_size=2)
    single = [classifier(item) for item in inputs]
    assert len(one_by_one) == len(batched) == 3
    # One shape whatever the batching: the transcripts come back with their inputs.
    for outputs in (one_by_one, batched, single):
        assert [output["transcript"] for output in outputs] == [item["text"] for item in inputs]
    for a, b, c in zip(
        *([output["labels"] for output in outputs] for outputs in (one_by_one, batched, single))
    ):
        assert [item["label"] for item in a] == [item["label"] for item in b] == [item["label"] for item in c]
        np.testing.assert_allclose([i["score"] for i in a], [i["score"] for i in b], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose([i["score"] for i in a], [i["score"] for i in c], rtol=1e-6)


def test_top_k_keeps_best_labels_in_order(classifier, wav_files):
    example = {"audio": str(wav_files["a16k"]), "text": "hello"}
    everything = classifier(example)["labels"]
    assert len(everything) == len(LABELS)
    assert [item["score"] for item in everything] == sorted(
        (item["score"] for item in everything), reverse=True
    )
    assert classifier(example, top_k=1)["labels"] == everything[:1]
    assert classifier(example, top_k=10)["labels"] == everything
    with pytest.raises(ValueError, match="top_k"):
        classifier(example, top_k=0)
    with pytest.raises(TypeError, match="topk"):
        classifier(example, topk=1)


def test_missing_transcript_without_asr_is_a_clear_error(classifier, wav_files):
    with pytest.raises(ValueError, match="needs a transcript.*asr_model"):
        classifier({"audio": str(wav_files["a16k"])})
    with pytest.raises(ValueError, match="'audio'"):
        classifier({"text": "hello"})


def test_undecodable_audio_error_names_the_input(classifier, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not a wav file")
    with pytest.raises(AudioDecodingError, match="broken.wav"):
        classifier({"audio": str(broken), "text": "hello"})
    with pytest.raises(AudioDecodingError, match="missing.wav"):
        classifier([{"audio": str(tmp_path / "missing.wav"), "text": "hello"}], batch_size=2)


def test_asr_model_transcribes_audio_without_text(model_dir, wav_files, tmp_path):
    asr_dir = save_tiny_whisper(tmp_path / "whisper")
    classifier = pipeline(TASK, model=model_dir, device="cpu", asr_model=asr_dir)
    inputs = [
        {"audio": str(wav_files["a16k"])},
        {"audio": str(wav_files["b16k"]), "text": "happy"},
        {"audio": str(wav_files["c8k"])},
    ]
    results = classifier(inputs, batch_size=2)
    assert [sorted(result) for result in results] == [["labels", "transcript"]] * 3
    transcript = results[0]["transcript"]
    assert isinstance(transcript, str) and transcript
    assert results[1]["transcript"] == "happy"  # a given transcript is used as is
    # The classifier read the ASR transcript: same scores as passing that text explicitly.
    plain = pipeline(TASK, model=model_dir, device="cpu")
    expected = plain({"audio": str(wav_files["a16k"]), "text": transcript})
    np.testing.assert_allclose(
        [i["score"] for i in results[0]["labels"]], [i["score"] for i in expected["labels"]], rtol=1e-4
    )
    single = classifier({"audio": str(wav_files["a16k"])})
    assert single["transcript"] == transcript


def test_saved_pipeline_loads_back_through_the_factory(classifier, wav_files, tmp_path):
    classifier.save_pretrained(tmp_path / "saved")
    reloaded = pipeline(TASK, model=str(tmp_path / "saved"), device="cpu")
    example = {"audio": str(wav_files["b16k"]), "text": "happy"}
    assert reloaded(example) == classifier(example)


@pytest.mark.parametrize("top_k", [True, False, 1.0, "2"])
def test_top_k_that_is_no_integer_is_a_type_error(classifier, wav_files, top_k):
    with pytest.raises(TypeError, match="top_k must be a positive integer"):
        classifier({"audio": str(wav_files["a16k"]), "text": "hello"}, top_k=top_k)


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.0])
def test_batch_size_must_be_a_positive_integer(classifier, wav_files, batch_size):
    with pytest.raises((TypeError, ValueError), match="batch_size must be a positive integer"):
        classifier([{"audio": str(wav_files["a16k"]), "text": "hello"}], batch_size=batch_size)


def test_batch_size_given_when_the_pipeline_is_built_is_checked_then(model_dir):
    with pytest.raises(ValueError, match="batch_size must be a positive integer; got 0"):
        pipeline(TASK, model=model_dir, device="cpu", batch_size=0)


def test_empty_list_gives_an_empty_list_and_still_checks_its_options(classifier):
    assert classifier([]) == []
    assert classifier([], batch_size=4, top_k=1) == []
    with pytest.raises(ValueError, match="top_k"):
        classifier([], top_k=0)


@pytest.mark.parametrize("rate", [0, None, 16000.5])
def test_a_bad_sampling_rate_beside_an_array_is_an_error_not_the_model_rate(classifier, rate):
    waveform = np.zeros(8000, np.float32)
    with pytest.raises(
        AudioDecodingError, match=r"sampling rate given with the audio array must be an integer"
    ):
        classifier({"audio": waveform, "sampling_rate": rate, "text": "hello"})


@pytest.fixture
def audio_lengths_seen(classifier, monkeypatch):
    """The number of audio samples of each batch that reaches the model's forward."""
    seen, forward, name = [], classifier.model.forward, classifier.processor.audio_input_name

    def spy(**inputs):
        seen.append(inputs[name].shape[-1])
        return forward(**inputs)

    monkeypatch.setattr(classifier.model, "forward", spy)
    return seen


def _noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * rate))).astype(np.float32)


def test_long_clips_are_cropped_to_max_duration_before_the_model(classifier, audio_lengths_seen):
    from turbo_hf.pipeline_options import DEFAULT_MAX_DURATION

    long_clip = {"audio": _noise(DEFAULT_MAX_DURATION + 2), "text": "hello"}
    classifier(long_clip)  # the default limit
    classifier([long_clip, {"audio": _noise(3.0), "text": "sad"}], batch_size=2, max_duration=1.5)
    classifier({"audio": _noise(3.0), "text": "hello"}, max_duration=None)  # None keeps the whole clip
    assert audio_lengths_seen == [int(DEFAULT_MAX_DURATION * 16000), 24000, 48000]


def test_a_long_file_is_cropped_before_it_is_resampled(classifier, tmp_path, monkeypatch):
    import soxr

    path = tmp_path / "ten_minutes.wav"
    sf.write(path, _noise(600.0, rate=8000), 8000, subtype="PCM_16")
    resampled = []
    resample = soxr.resample
    monkeypatch.setattr(soxr, "resample", lambda x, *a, **k: resampled.append(len(x)) or resample(x, *a, **k))
    classifier({"audio": str(path), "text": "hello"}, max_duration=2.0)
    # Two seconds (and the filter's context) of the ten minutes are resampled, not 4.8 M samples.
    assert resampled and max(resampled) < 2.2 * 8000


def test_max_duration_keeps_the_centre_as_evaluation_crops(classifier, model_dir):
    waveform = _noise(3.0, seed=1)
    cropped = classifier({"audio": waveform, "text": "hello"}, max_duration=1.0)
    centre = classifier({"audio": waveform[16000:32000], "text": "hello"})
    assert cropped == centre
    # Given when the pipeline is built, the limit holds for every call.
    built_with_limit = pipeline(TASK, model=model_dir, device="cpu", max_duration=1.0)
    assert built_with_limit({"audio": waveform, "text": "hello"}) == centre


@pytest.mark.parametrize("max_duration, error", BAD_MAX_DURATIONS)
def test_max_duration_must_be_a_positive_finite_number(classifier, max_duration, error):
    with pytest.raises(error, match="max_duration must be a positive number of seconds or None"):
        classifier({"audio": _noise(0.5), "text": "hello"}, max_duration=max_duration)


def test_max_duration_shorter_than_the_encoder_needs_is_named(classifier, model_dir):
    with pytest.raises(ValueError, match=r"max_duration=0.001 .*needs at least 185 samples"):
        classifier({"audio": _noise(0.5), "text": "hello"}, max_duration=0.001)
    with pytest.raises(ValueError, match="max_duration=0.001"):
        pipeline(TASK, model=model_dir, device="cpu", max_duration=0.001)


def test_a_max_text_length_that_holds_no_word_is_refused_when_the_pipeline_is_built(model_dir):
    with pytest.raises(ValueError, match=r"max_text_length=1 leaves no room for a transcript"):
        pipeline(TASK, model=model_dir, device="cpu", max_text_length=1)


@pytest.mark.parametrize(
    "key, meant", [("sample_rate", "sampling_rate"), ("sr", "sampling_rate"), ("transcript", "text")]
)
def test_a_look_alike_key_for_an_absent_input_key_is_named(classifier, key, meant):
    example = {"audio": _noise(0.5, rate=8000), key: 8000 if meant == "sampling_rate" else "hello"}
    if meant == "sampling_rate":
        example["text"] = "hello"
    with pytest.raises(ValueError, match=rf"has '{key}' but no '{meant}'"):
        classifier(example)
    # Extra keys that stand for nothing (a dataset row's id and label) are fine.
    assert classifier({"audio": _noise(0.5), "text": "hi", "id": "u1", "label": 2})["labels"]
    # A rate key beside audio that carries its own rate (a dict, a file) stands for nothing either.
    assert classifier({"audio": {"array": _noise(0.5), "sampling_rate": 16000}, "text": "hi", "sr": 8000})


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps", "meta", 0, "tpu"])
def test_a_device_this_machine_lacks_is_named_before_the_model_moves(model_dir, device):
    if device != "meta" and device != "tpu" and torch.accelerator.is_available():
        pytest.skip("this machine has an accelerator")
    with pytest.raises(ValueError, match=rf"device {device}: .*use cpu"):
        pipeline(TASK, model=model_dir, device=device)
