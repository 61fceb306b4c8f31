"""Whisper as a Turbo audio encoder: the front end once, the batch window, and every door that must
featurize as training did (processor, collators, save / load, pipeline, CLI)."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TurboModelTester
from datasets import Dataset
from transformers import AutoModel, AutoProcessor, pipeline
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from turbo_hf import DataCollatorForAudioText, DecodeAndCrop, TurboForAudioTextClassification
from turbo_hf.audio_encoders import WhisperAdapter
from turbo_hf.cli import main
from turbo_hf.pipeline import TASK

LABELS = ["neutral", "happy", "sad"]


def whisper_tester(audio_window: str = "full", **kwargs) -> TurboModelTester:
    """A tiny Whisper with a 3 s pretrained window, so that a batch window can be shorter."""
    return TurboModelTester("whisper", "bert", whisper_seconds=3, audio_window=audio_window, **kwargs)


def collate_as_the_trainer_does(processor, examples: list[dict], training: bool) -> dict:
    """The split transform of training (random crops, here of nothing) or evaluation, then the collator."""
    split = Dataset.from_list(examples).with_transform(
        DecodeAndCrop(processor.sampling_rate, max_duration=None, random_crop=training)
    )
    return DataCollatorForAudioText(processor)([split[index] for index in range(len(split))])


def assert_front_end_once_equals_plain_2n(adapter: WhisperAdapter, features: torch.Tensor) -> None:
    """Two views through the adapter (front end on N rows) against WhisperEncoder.forward on the 2N
    rows, in value and in the gradient of every encoder parameter; the encoder in training mode."""
    encoder = adapter.encoder.train()
    fast = adapter.encode(features, None, num_views=2)
    weights = torch.randn_like(fast)
    (fast * weights).sum().backward()
    fast_grads = {name: p.grad for name, p in encoder.named_parameters()}
    encoder.zero_grad(set_to_none=True)
    plain = encoder(features.repeat(2, 1, 1)).last_hidden_state
    torch.testing.assert_close(fast, plain, rtol=1e-8, atol=1e-8)
    (plain * weights).sum().backward()
    compared = 0
    for name, parameter in encoder.named_parameters():
        if not parameter.requires_grad:  # the positional embeddings are frozen, as pretrained
            assert fast_grads[name] is None and parameter.grad is None, name
            continue
        torch.testing.assert_close(
            fast_grads[name], parameter.grad, rtol=1e-7, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}"
        )
        compared += 1
    assert compared == sum(p.requires_grad for p in encoder.parameters()) > 0


def test_whisper_front_end_once_equals_the_plain_2n_encoder_call_without_dropout():
    tester = TurboModelTester("whisper", "bert", audio_encoder_dropout=0.0)
    assert tester.config.audio_config.dropout == 0.0
    # float64: the comparison is then exact up to 1e-8, free of float32 summation-order noise.
    model = tester.model().double()
    assert_front_end_once_equals_plain_2n(model.audio_adapter, tester.inputs()["input_features"].double())


def test_whisper_views_differ_with_dropout_and_share_one_front_end():
    tester = TurboModelTester("whisper", "bert", audio_encoder_dropout=0.2)
    model = tester.model().train()
    batch = tester.inputs()
    audio = model.get_audio_features(batch["input_features"], batch["audio_attention_mask"], num_views=2)
    assert not torch.allclose(*audio.split(3))
    calls = []
    model.audio_model.conv1.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    model(**batch)
    assert calls == [3]  # the convolutions ran once, on the N rows


def test_full_window_runs_exactly_the_pretrained_encoder():
    tester = whisper_tester("full")
    model = tester.model().eval()
    batch = tester.inputs()
    assert batch["input_features"].shape[-1] == 300
    with torch.no_grad():
        adapted = model.audio_adapter.encode(batch["input_features"], batch["audio_attention_mask"])
        pretrained = model.audio_model(batch["input_features"]).last_hidden_state
    torch.testing.assert_close(adapted, pretrained, rtol=0, atol=0)


def test_batch_window_pads_to_the_longest_clip_rounded_up_to_whole_seconds_and_caps_at_the_window():
    processor = whisper_tester("batch").processor
    batch = processor(audio=TurboModelTester().waveforms([1.3, 0.5]), text=["a", "b"], sampling_rate=16000)
    assert batch["input_features"].shape == (2, 80, 200)  # 1.3 s -> 2 s of 10 ms frames
    assert batch["audio_attention_mask"].sum(-1).tolist() == [130, 50]
    long = processor(audio=TurboModelTester().waveforms([4.2]), text=["a"], sampling_rate=16000)
    assert long["input_features"].shape == (1, 80, 300)  # capped at the 3 s window
    full = whisper_tester("full").processor
    assert full(audio=TurboModelTester().waveforms([1.3]), text=["a"])["input_features"].shape[-1] == 300


def test_batch_window_runs_the_encoder_with_the_matching_slice_of_its_positions():
    tester = whisper_tester("batch")
    model = tester.model().eval()
    batch = tester.inputs()
    features = batch["input_features"]
    assert features.shape[-1] == 100  # the 1 s longest clip, not the 3 s window
    # Reference: transformers' own WhisperEncoder built for a 1 s window with the first 50 positions.
    short_config = model.config.audio_config.__class__(
        **{**model.config.audio_config.to_dict(), "max_source_positions": 50}
    )
    short = WhisperEncoder(short_config).eval()
    state = model.audio_model.state_dict()
    short.load_state_dict({**state, "embed_positions.weight": state["embed_positions.weight"][:50]})
    with torch.no_grad():
        adapted = model.audio_adapter.encode(features, batch["audio_attention_mask"])
        reference = short(features).last_hidden_state
    torch.testing.assert_close(adapted, reference, rtol=1e-6, atol=1e-6)
    assert model.audio_model.embed_positions.weight.shape[0] == 150  # the weights stay the pretrained ones


def test_batch_window_pools_over_the_frames_of_real_audio():
    tester = whisper_tester("batch")
    model = tester.model().eval()
    batch = tester.inputs()
    with torch.no_grad():
        hidden = model.audio_adapter.encode(batch["input_features"], batch["audio_attention_mask"])
        frames = (batch["audio_attention_mask"].sum(-1) - 1) // 2 + 1  # conv2 halves the mel frames
        expected = torch.stack([hidden[i, : frames[i]].mean(0) for i in range(hidden.shape[0])])
        pooled = model.get_audio_features(batch["input_features"], batch["audio_attention_mask"])
    assert frames.min() < hidden.shape[1]
    torch.testing.assert_close(pooled, model.audio_projection(expected), rtol=1e-5, atol=1e-5)


def test_a_processor_and_a_model_of_different_windows_are_an_error(tmp_path):
    batch_tester, full_tester = whisper_tester("batch"), whisper_tester("full")
    batch_model, full_model = batch_tester.model().eval(), full_tester.model().eval()
    with torch.no_grad():
        with pytest.raises(
            ValueError, match=r"window of 300 log-mel frames \(audio_window='full'\), got 100"
        ):
            full_model(**batch_tester.inputs())
        with pytest.raises(ValueError, match="padded further than the batch window"):
            batch_model(**full_tester.inputs())
    with pytest.raises(ValueError, match="audio_window='full' but the model was configured.*'batch'"):
        full_tester.processor.check_model_config(batch_model.config)
    # A folder whose processor does not match its model cannot become a pipeline.
    batch_model.save_pretrained(tmp_path)
    full_tester.processor.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="audio_window"):
        pipeline(TASK, model=str(tmp_path), device="cpu")


@pytest.fixture(scope="module")
def batch_window_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whisper_batch")
    whisper_tester("batch").save_classifier(folder / "model", LABELS)
    rng = np.random.default_rng(0)
    wav = folder / "clip.wav"
    sf.write(wav, (0.1 * rng.standard_normal(int(1.3 * 16000))).astype(np.float32), 16000)
    return str(folder / "model"), str(wav)


def test_the_saved_window_is_what_the_collators_the_pipeline_and_the_cli_featurize_with(batch_window_folder):
    folder, wav = batch_window_folder
    with open(f"{folder}/config.json") as handle:
        assert json.load(handle)["audio_window"] == "batch"
    processor = AutoProcessor.from_pretrained(folder)
    assert processor.audio_window == "batch"
    model = AutoModel.from_pretrained(folder).eval()
    examples = [{"audio": wav, "text": "hello", "label": 0}]
    evaluation = collate_as_the_trainer_does(processor, examples, training=False)
    training = collate_as_the_trainer_does(processor, examples, training=True)
    assert evaluation["input_features"].shape[-1] == 200
    torch.testing.assert_close(training["input_features"], evaluation["input_features"], rtol=0, atol=0)
    with torch.no_grad():
        output = model(**evaluation)
    expected = output.logits.softmax(-1)[0]
    classifier = pipeline(TASK, model=folder, device="cpu")
    scores = {item["label"]: item["score"] for item in classifier({"audio": wav, "text": "hello"})["labels"]}
    np.testing.assert_allclose([scores[label] for label in LABELS], expected.numpy(), rtol=1e-5)
    with torch.no_grad():  # the full window makes another audio embedding
        full_features = whisper_tester("full").processor(audio=[sf.read(wav)[0]], text=["hello"])
        full_model = AutoModel.from_pretrained(folder, audio_window="full").eval()
        full_embedding = full_model(**full_features).audio_embeds
    assert not torch.allclose(full_embedding, output.audio_embeds, rtol=1e-3, atol=1e-5)


def test_the_pipeline_featurizes_a_batch_as_the_evaluation_collator_does(batch_window_folder, tmp_path):
    folder, wav = batch_window_folder
    short = tmp_path / "short.wav"
    sf.write(short, sf.read(wav)[0][:8000], 16000)
    clips = [{"audio": wav, "text": "hello"}, {"audio": str(short), "text": "sad world"}]
    processor, model = AutoProcessor.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = collate_as_the_trainer_does(processor, clips, training=False)
    assert batch["input_features"].shape[-1] == 200  # both clips in the longest clip's 2 s window
    with torch.no_grad():
        expected = model(**batch).logits.softmax(-1)
    results = pipeline(TASK, model=folder, device="cpu")(clips, batch_size=2)
    for row, result in enumerate(results):
        scores = {item["label"]: item["score"] for item in result["labels"]}
        np.testing.assert_allclose([scores[label] for label in LABELS], expected[row].numpy(), rtol=1e-5)


def test_the_cli_follows_the_saved_window(batch_window_folder, capsys):
    folder, wav = batch_window_folder
    assert main(["predict", folder, "--audio", wav, "--text", "hello"]) == 0
    printed = {item["label"]: item["score"] for item in json.loads(capsys.readouterr().out)["labels"]}
    classifier = pipeline(TASK, model=folder, device="cpu")
    scores = {item["label"]: item["score"] for item in classifier({"audio": wav, "text": "hello"})["labels"]}
    assert printed == pytest.approx(scores, rel=1e-6)


def test_batch_window_training_step_reaches_the_encoder_and_round_trips_exactly(tmp_path):
    tester = whisper_tester("batch", audio_encoder_dropout=0.1)
    model = tester.model().train()
    model(**tester.inputs()).loss.backward()
    assert model.audio_model.conv1.weight.grad.abs().sum() > 0
    assert model.audio_model.layers[-1].fc2.weight.grad.abs().sum() > 0
    model.eval().save_pretrained(tmp_path)
    loaded = TurboForAudioTextClassification.from_pretrained(tmp_path).eval()
    assert loaded.config.audio_window == "batch"
    batch = tester.inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, loaded(**batch).logits, rtol=0, atol=0)
