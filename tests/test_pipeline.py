"""The "audio-text-classification" pipeline: scores equal the model's softmax, batching, ASR."""

import string

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TurboModelTester
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
