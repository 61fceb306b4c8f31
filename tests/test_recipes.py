"""The recipes as users run them: subprocesses on a synthetic corpus, two training steps each."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from turbo_hf.data.iemocap import load_iemocap
from turbo_hf.losses import balanced_class_weights
from turbo_hf.testing.synthetic import SYNTHETIC_CLASSES, SYNTHETIC_WORDS, make_synthetic_corpus
from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
TWO_STEPS = [
    "--max_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "8",
    "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps", "--save_steps", "2",
    "--logging_steps", "1", "--max_duration", "1.0", "--projection_dim", "16", "--use_cpu", "true",
    "--disable_tqdm", "true", "--report_to", "none",
]  # fmt: skip


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    audio = save_tiny_audio_encoder(root / "audio", "wav2vec2", mask_time_prob=0.0)
    text = save_tiny_text_encoder(root / "text", "bert", words=SYNTHETIC_WORDS)
    return ["--audio_model_name_or_path", str(audio), "--text_model_name_or_path", str(text)]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def log(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def test_run_ser_on_every_session_fold_writes_fold_metrics_and_the_summary(tmp_path, encoders):
    corpus = make_synthetic_corpus(tmp_path / "IEMOCAP_full_release", n_per_class=3, seed=1)
    output = tmp_path / "ser"
    _run(
        [sys.executable, str(RECIPES / "run_ser.py"), "--iemocap_root", str(corpus), "--protocol", "session",
         "--fold", "all", "--loss_mode", "turbo", "--output_dir", str(output), *encoders, *TWO_STEPS],
        tmp_path,
    )  # fmt: skip
    summary = json.loads((output / "summary.json").read_text())
    assert summary["num_folds"] == 5 and len(summary["folds"]) == 5
    test_rows = 0
    for fold in range(5):
        fold_metrics = json.loads((output / f"fold_{fold}" / "test_results.json").read_text())
        assert 0.0 <= fold_metrics["test_ua"] <= 1.0
        assert summary["folds"][fold]["test_wa"] == fold_metrics["test_wa"]
        assert (output / f"fold_{fold}" / "model.safetensors").is_file()
        # The errors: the confusion matrix and per-class recall, whose mean is UA.
        matrix = fold_metrics["test_confusion_matrix"]
        assert matrix["class_names"] == list(SYNTHETIC_CLASSES)
        test_rows += sum(map(sum, matrix["counts"]))
        recalls = [r for r in fold_metrics["test_per_class_recall"].values() if r is not None]
        assert sum(recalls) / len(recalls) == pytest.approx(fold_metrics["test_ua"])
        # IEMOCAP's report: WA / UA by recording method, and the test transcripts seen in training.
        by_method = fold_metrics["test_by_method"]
        assert set(by_method) == {"improvised", "scripted"}
        assert sum(part["num_examples"] for part in by_method.values()) == sum(map(sum, matrix["counts"]))
        in_train = fold_metrics["test_transcripts_in_train"]
        assert in_train["count"] == sum(part["transcripts_in_train"] for part in by_method.values())
        assert "eval_confusion_matrix" in json.loads(
            (output / f"fold_{fold}" / "eval_results.json").read_text()
        )
        state = json.loads((output / f"fold_{fold}" / "trainer_state.json").read_text())
        assert isinstance(state["best_metric"], float)  # checkpoint selection still reads a float
    summary_md = (output / "summary.md").read_text()
    assert "± " in summary_md and "summed over 5 folds" in summary_md and "| scripted |" in summary_md
    assert "occur verbatim in their fold's training split" in summary_md
    assert sum(map(sum, summary["confusion_matrix"]["counts"])) == test_rows
    assert (output / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"

    # Stop the run as a crash would: fold 3 without its test results, fold 4 never started.
    first_fold = output / "fold_0" / "test_results.json"
    first_fold_written = first_fold.stat().st_mtime_ns
    (output / "fold_3" / "test_results.json").unlink()
    shutil.rmtree(output / "fold_4")
    resumed = _run(
        [sys.executable, str(RECIPES / "run_ser.py"), "--iemocap_root", str(corpus), "--protocol", "session",
         "--fold", "all", "--loss_mode", "turbo", "--output_dir", str(output), *encoders, *TWO_STEPS,
         "--resume_from_checkpoint", "last", "--log_level", "info"],
        tmp_path,
    )  # fmt: skip
    log = resumed.stdout + resumed.stderr
    assert "fold 0 finished in an earlier run" in log
    assert f"Resuming from {output / 'fold_3' / 'checkpoint-2'}" in log
    assert first_fold.stat().st_mtime_ns == first_fold_written
    summary = json.loads((output / "summary.json").read_text())
    assert len(summary["folds"]) == 5 and (output / "fold_4" / "test_results.json").is_file()


def test_run_ser_through_accelerate_launch_on_one_speaker_fold(tmp_path, encoders):
    corpus = make_synthetic_corpus(
        tmp_path / "IEMOCAP_full_release", n_per_class=4, seed=2
    )  # each class in both dialogs
    output = tmp_path / "ser"
    done = _run(
        [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
         "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         str(RECIPES / "run_ser.py"), "--iemocap_root", str(corpus), "--protocol", "speaker", "--fold", "3",
         "--loss_mode", "cross", "--output_dir", str(output), *encoders, *TWO_STEPS,
         "--method", "scripted", "--class_weights", "balanced", "--log_level", "info"],
        tmp_path,
    )  # fmt: skip
    metrics = json.loads((output / "test_results.json").read_text())
    assert {"test_wa", "test_ua", "test_macro_f1"} <= set(metrics)
    assert list(metrics["test_by_method"]) == ["scripted"]  # --method scripted: only scripted dialogs
    # "balanced" became the training split's inverse class frequencies, saved with the model and logged.
    train = load_iemocap(corpus, protocol="speaker", fold=3, method="scripted")["train"]
    expected = balanced_class_weights(train["label"], SYNTHETIC_CLASSES)
    assert json.loads((output / "config.json").read_text())["class_weights"] == pytest.approx(expected)
    assert "class weights of the cross-entropy ('balanced'" in log(done)
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    logged = [entry for entry in state["log_history"] if "cross_modal_loss" in entry]
    assert logged, "the cross-modal loss part is logged during training"


def test_run_dsd_on_a_binary_manifest_reports_acc_and_eer(tmp_path, encoders):
    manifest = make_synthetic_corpus(
        tmp_path / "dsd", layout="manifest", n_per_class=8, classes=("non_directed", "directed")
    )
    # One training row whose audio is gone: skipped on request, and the log says which line.
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    with open(manifest, "a", newline="") as handle:
        csv.DictWriter(handle, fieldnames=list(rows[0])).writerow({**rows[0], "audio": "gone.wav"})
    output = tmp_path / "dsd_run"
    result = _run(
        [sys.executable, str(RECIPES / "run_dsd.py"), "--manifest", str(manifest),
         "--labels", "non_directed,directed", "--loss_mode", "vanilla", "--output_dir", str(output),
         "--on_bad_row", "skip", *encoders, *TWO_STEPS],
        tmp_path,
    )  # fmt: skip
    assert (
        f"skipped 1 of {len(rows) + 1} rows; first: {manifest.name}:{len(rows) + 2}:"
        in result.stdout + result.stderr
    )
    metrics = json.loads((output / "test_results.json").read_text())
    assert 0.0 <= metrics["test_eer"] <= 1.0 and 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["test_confusion_matrix"]["class_names"] == ["non_directed", "directed"]
    assert "test_by_method" not in metrics  # an IEMOCAP report only
    config = json.loads((output / "config.json").read_text())
    assert config["id2label"] == {"0": "non_directed", "1": "directed"}


def test_two_processes_with_torchrun_train_one_model(tmp_path, encoders):
    """`torchrun --nproc_per_node 2` starts two gloo processes that the Trainer runs as DDP."""
    manifest = make_synthetic_corpus(
        tmp_path / "dsd", layout="manifest", n_per_class=8, seed=3, classes=("non_directed", "directed")
    )
    output = tmp_path / "ddp"
    _run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
         str(RECIPES / "run_dsd.py"), "--manifest", str(manifest), "--loss_mode", "turbo",
         "--output_dir", str(output), *encoders, *TWO_STEPS],
        tmp_path,
    )  # fmt: skip
    state = json.loads((output / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    # 12 training utterances; 2 processes x 4 rows: 2 steps are one epoch (one process: 3 steps)
    assert state["epoch"] == pytest.approx(1.0)
    logged = [entry for entry in state["log_history"] if "in_modal_loss" in entry]
    assert len(logged) == 2 and all(entry["in_modal_loss"] > 0 for entry in logged)  # reduced over both
    assert json.loads((output / "test_results.json").read_text())["test_ua"] >= 0.0


def test_run_dsd_refuses_eer_model_selection_on_a_multi_class_manifest(tmp_path, encoders):
    manifest = make_synthetic_corpus(tmp_path / "four", layout="manifest", n_per_class=6, seed=4)
    result = subprocess.run(
        [sys.executable, str(RECIPES / "run_dsd.py"), "--manifest", str(manifest), "--output_dir",
         str(tmp_path / "out"), *encoders, *TWO_STEPS],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode != 0
    assert "needs a binary task" in result.stderr and "--metric_for_best_model ua" in result.stderr


def test_analyze_writes_the_numbers_and_both_figures_for_trained_models(tmp_path, encoders):
    corpus = make_synthetic_corpus(tmp_path / "IEMOCAP_full_release", n_per_class=2, seed=5)
    runs = []
    for method in ("vanilla", "turbo"):
        runs.append(tmp_path / f"{method}_seed7")
        _run(
            [sys.executable, str(RECIPES / "run_ser.py"), "--iemocap_root", str(corpus), "--protocol", "session",
             "--fold", "1", "--loss_mode", method, "--output_dir", str(runs[-1]), *encoders, *TWO_STEPS],
            tmp_path,
        )  # fmt: skip
    output = tmp_path / "analysis"
    _run(
        [sys.executable, str(RECIPES / "analyze.py"), *map(str, runs), "--iemocap_root", str(corpus),
         "--protocol", "session", "--fold", "1", "--output_dir", str(output)],
        tmp_path,
    )  # fmt: skip
    results = json.loads((output / "analysis.json").read_text())["models"]
    assert [(r["method"], r["seed"]) for r in results] == [("vanilla", 7), ("turbo", 7)]
    for numbers in results:
        assert 0.0 <= numbers["alignment"] <= 4.0  # squared distance of unit vectors
        assert -4.0 <= numbers["uniformity_audio"] <= 0.0
        assert numbers["num_examples"] == 8  # session 2: 4 classes x 2
    for figure in ("align_uniform.png", "audio_kde.png"):
        assert (output / figure).read_bytes()[:4] == b"\x89PNG"
