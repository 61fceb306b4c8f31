"""The real-material tier: real Whisper tiny.en and MiniLM weights, real speech (EmoDB, TESS), through
every public door. Material comes from TURBO_HF_REAL_DIR (see conftest.py); absent, these skip."""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_whisper import assert_front_end_once_equals_plain_2n, collate_as_the_trainer_does
from transformers import AutoModel, AutoProcessor, WhisperForConditionalGeneration, pipeline

from turbo_hf import TurboForAudioTextClassification, TurboProcessor
from turbo_hf.audio import load_audio
from turbo_hf.audio_encoders import WhisperAdapter
from turbo_hf.hub import save_for_hub
from turbo_hf.pipeline import TASK

pytestmark = pytest.mark.real

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
AIFF_NAMED_WAV = "wav/507testYAF_germ_angry29.wav"
AT_96_KHZ = "wav/762testOAF_food_fear52.wav"
TESS_LABELS = ["angry", "disgust", "fear", "happy", "neutral", "pleasant_surprise", "sad"]


def read_manifest(folder: Path) -> list[dict[str, str]]:
    with open(folder / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s]", " ", text.lower()).split()


@pytest.fixture(scope="module")
def tess(real):
    rows = {row["audio"]: row for row in read_manifest(real.tess_dir)}
    return real.tess_dir, rows


@pytest.fixture(scope="module")
def real_folder(real, tmp_path_factory):
    """Turbo on the real Whisper and MiniLM folders (no speech needed: hub downloads will do), saved
    with its processor as training saves it."""
    labels = TESS_LABELS
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        str(real.whisper_dir),
        str(real.text_dir),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
        projection_dim=32,
    )
    processor = TurboProcessor.from_encoders_pretrained(str(real.whisper_dir), str(real.text_dir))
    folder = tmp_path_factory.mktemp("real_turbo")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model.eval(), processor, str(folder)


def tone_examples(seconds=(1.5, 2.5)) -> list[dict]:
    """Speech-free inputs for the tests that need real weights only."""
    rng = np.random.default_rng(0)
    return [
        {"audio": (0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32), "text": "say the word back"}
        for s in seconds
    ]


def examples(tess, names):
    folder, rows = tess
    return [{"audio": str(folder / name), "text": rows[name]["text"], "label": 0} for name in names]


def test_from_encoders_pretrained_keeps_the_real_weights_and_whisper_its_own_dropout(real, real_folder):
    model, _, _ = real_folder
    whisper = WhisperForConditionalGeneration.from_pretrained(real.whisper_dir).model.encoder.state_dict()
    minilm = AutoModel.from_pretrained(real.text_dir).state_dict()
    for encoder, reference in ((model.audio_model, whisper), (model.text_model, minilm)):
        loaded = encoder.state_dict()
        assert set(loaded) <= set(reference) and len(loaded) > 20
        for name, value in loaded.items():
            torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)
    assert model.audio_model.dropout == 0.0 and model.config.audio_config.attention_dropout == 0.0
    assert model.config.text_config.hidden_dropout_prob == 0.2
    assert model.text_model.pooler is None if hasattr(model.text_model, "pooler") else True


def test_real_whisper_front_end_once_equals_the_plain_2n_call_in_value_and_gradient(real_folder):
    model, processor, _ = real_folder
    adapter = WhisperAdapter(copy.deepcopy(model.audio_model).double())
    features = processor(audio=[tone_examples()[0]["audio"]], text=["x"])["input_features"].double()
    assert features.shape == (1, 80, 3000)
    assert_front_end_once_equals_plain_2n(adapter, features)


def test_asr_fallback_returns_the_real_transcripts_beside_the_labels(real, real_folder, tess):
    _, _, folder = real_folder
    classifier = pipeline(TASK, model=folder, device="cpu", asr_model=str(real.whisper_dir))
    names = ["wav/YAF_bath_sad.wav", AIFF_NAMED_WAV, AT_96_KHZ]
    results = classifier([{"audio": str(tess[0] / name)} for name in names], batch_size=3)
    for name, result in zip(names, results):
        assert words(result["transcript"]) == words(tess[1][name]["text"]), name
        assert len(result["labels"]) == 7 and {"label", "score"} <= set(result["labels"][0])


def test_the_quirky_files_take_the_same_audio_path_in_training_and_inference(real_folder, tess):
    model, processor, folder = real_folder
    for name, rate in ((AIFF_NAMED_WAV, 24414), (AT_96_KHZ, 96000)):
        path = tess[0] / name
        info = sf.info(str(path))
        assert info.samplerate == rate
        assert load_audio(str(path), 16000).shape[0] == pytest.approx(info.duration * 16000, abs=2)
    assert sf.info(str(tess[0] / AIFF_NAMED_WAV)).format == "AIFF"
    batch = examples(tess, [AIFF_NAMED_WAV, AT_96_KHZ])
    training = collate_as_the_trainer_does(processor, batch, training=True)
    evaluation = collate_as_the_trainer_does(processor, batch, training=False)
    torch.testing.assert_close(training["input_features"], evaluation["input_features"], rtol=0, atol=0)
    with torch.no_grad():
        expected = model(**evaluation).logits.softmax(-1)
    classifier = pipeline(TASK, model=folder, device="cpu")
    for row, result in enumerate(classifier([{k: v for k, v in e.items() if k != "label"} for e in batch])):
        scores = {item["label"]: item["score"] for item in result["labels"]}
        got = [scores[model.config.id2label[index]] for index in range(model.config.num_labels)]
        np.testing.assert_allclose(got, expected[row].numpy(), rtol=1e-5)


def test_save_pretrained_reloads_through_auto_model_and_the_pipeline_with_identical_logits(real_folder):
    model, processor, folder = real_folder
    inputs = tone_examples()
    batch = processor(audio=[e["audio"] for e in inputs], text=[e["text"] for e in inputs])
    reloaded = AutoModel.from_pretrained(folder).eval()
    assert isinstance(reloaded, TurboForAudioTextClassification)
    assert isinstance(AutoProcessor.from_pretrained(folder), TurboProcessor)
    with torch.no_grad():
        logits = model(**batch).logits
        torch.testing.assert_close(reloaded(**batch).logits, logits, rtol=0, atol=0)
    classifier = pipeline(TASK, model=folder, device="cpu")
    for row, result in enumerate(classifier(inputs)):
        scores = {item["label"]: item["score"] for item in result["labels"]}
        got = [scores[model.config.id2label[index]] for index in range(model.config.num_labels)]
        np.testing.assert_allclose(got, logits[row].softmax(-1).numpy(), rtol=1e-5)


def test_the_hub_card_names_both_real_encoders(real, real_folder, tmp_path):
    model, processor, _ = real_folder
    save_for_hub(model, processor, tmp_path)
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"`whisper` (local folder `{Path(real.whisper_dir).name}`)" in card
    assert f"`bert` (local folder `{Path(real.text_dir).name}`)" in card


def test_run_dsd_trains_a_few_steps_on_emodb_with_the_real_encoders(real, tmp_path):
    emodb = real.emodb_dir
    rows = read_manifest(emodb)
    by_label = {}
    for row in rows:
        by_label.setdefault(row["label"], []).append(row)
    manifest = tmp_path / "emodb_small.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["audio", "text", "label", "split"])
        writer.writeheader()
        for label_rows in by_label.values():  # per class: 2 train, 1 validation, 1 test
            for row, split in zip(label_rows, ["train", "train", "validation", "test"]):
                writer.writerow(
                    {
                        "audio": str(emodb / row["audio"]),
                        "text": row["text"],
                        "label": row["label"],
                        "split": split,
                    }
                )
    output = tmp_path / "run"
    command = [
        sys.executable, str(RECIPES / "run_dsd.py"), "--manifest", str(manifest), "--output_dir", str(output),
        "--audio_model_name_or_path", str(real.whisper_dir), "--text_model_name_or_path", str(real.text_dir),
        "--audio_window", "batch", "--feature_norm", "batch", "--metric_for_best_model", "ua",
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "4",
        "--eval_strategy", "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
        "--max_duration", "2.0", "--projection_dim", "32", "--use_cpu", "true", "--disable_tqdm", "true",
        "--report_to", "none", "--logging_steps", "1",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "2"}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert all(entry["in_modal_loss"] > 0 for entry in state["log_history"] if "in_modal_loss" in entry)
    assert "test_ua" in json.loads((output / "test_results.json").read_text())
    assert json.loads((output / "config.json").read_text())["audio_window"] == "batch"
    assert AutoProcessor.from_pretrained(output).audio_window == "batch"  # saved with the model
