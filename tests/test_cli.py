"""`turbo-hf predict` / `turbo-hf evaluate` on small manifests, in-process and once as a subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import TurboModelTester
from transformers import pipeline

from turbo_hf import TurboForAudioTextClassification
from turbo_hf.cli import EXIT_BAD_INPUT, UserError, main
from turbo_hf.pipeline import TASK, register_pipeline

LABELS = ["neutral", "happy", "sad"]
TEXTS = ["hello world", "happy", "sad and angry", "hello", "world", "happy world"]


def save_classifier(folder, labels) -> str:
    return TurboModelTester(num_labels=len(labels)).save_classifier(folder, labels)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_classifier(tmp_path_factory.mktemp("model"), LABELS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Six short wav files (two at 8 kHz) and a labelled CSV manifest with train/test splits."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    rows = []
    for index, text in enumerate(TEXTS):
        rate = 8000 if index % 3 == 2 else 16000
        name = f"utt{index}.wav"
        sf.write(folder / name, (0.1 * rng.standard_normal(int(0.5 * rate))).astype(np.float32), rate)
        split = "test" if index % 2 else "train"
        rows.append(
            {"id": f"u{index}", "audio": name, "text": text, "label": LABELS[index % 3], "split": split}
        )
    return folder, rows


def write_manifest(folder, rows, name="manifest.csv") -> str:
    lines = ["id,audio,text,label,split"] + [
        f"{r['id']},{r['audio']},{r['text']},{r['label']},{r['split']}" for r in rows
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def one_error_line(capsys, command: str) -> str:
    """The only line on stderr, an argparse-style error of `command`; no traceback, no usage."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    return lines[0]


def read_jsonl(path):
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_predict_one_file_prints_labels(model_dir, corpus, capsys):
    folder, _ = corpus
    code = main(
        ["predict", model_dir, "--audio", str(folder / "utt0.wav"), "--text", "hello", "--top-k", "2"]
    )
    assert code == 0
    output = json.loads(capsys.readouterr().out)  # the pipeline's output: labels and transcript
    labels = output["labels"]
    assert (
        output["transcript"] == "hello"
        and len(labels) == 2
        and {item["label"] for item in labels} <= set(LABELS)
    )
    assert labels[0]["score"] >= labels[1]["score"]


def test_predict_manifest_writes_one_line_per_row(model_dir, corpus, tmp_path):
    folder, rows = corpus
    manifest = write_manifest(folder, rows)
    output = tmp_path / "predictions.jsonl"
    args = ["predict", model_dir, "--manifest", manifest, "--output", str(output), "--batch-size", "4"]
    assert main([*args, "--all-scores", "--no-progress"]) == 0
    predictions = read_jsonl(output)
    assert [p["id"] for p in predictions] == [r["id"] for r in rows]
    register_pipeline()
    reference = pipeline(TASK, model=model_dir, device="cpu")(
        {"audio": str(folder / rows[2]["audio"]), "text": rows[2]["text"]}
    )
    assert predictions[2]["label"] == reference["labels"][0]["label"]
    assert predictions[2]["score"] == pytest.approx(reference["labels"][0]["score"], rel=1e-4)
    assert set(predictions[2]["scores"]) == set(LABELS)
    assert "transcript" not in predictions[0]


def test_evaluate_prints_metrics_of_the_chosen_split(model_dir, corpus, tmp_path, capsys):
    folder, rows = corpus
    manifest = write_manifest(folder, rows)
    output = tmp_path / "metrics.json"
    assert (
        main(["evaluate", model_dir, "--manifest", manifest, "--split", "test", "--output", str(output)]) == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert {"wa", "ua", "macro_f1"} <= set(metrics) and "eer" not in metrics
    assert metrics["num_examples"] == sum(r["split"] == "test" for r in rows)
    assert json.loads(output.read_text()) == metrics
    # The errors behind the scores: the matrix (true rows x predicted columns) and per-class recall.
    matrix, recall = metrics["confusion_matrix"], metrics["per_class_recall"]
    counts = np.array(matrix["counts"])
    assert matrix["class_names"] == LABELS and list(recall) == LABELS
    assert counts.sum() == metrics["num_examples"]
    assert np.trace(counts) / counts.sum() == pytest.approx(metrics["wa"])
    shown = [value for value in recall.values() if value is not None]
    assert np.mean(shown) == pytest.approx(metrics["ua"])  # UA is the mean of the recalls shown
    for row, name in zip(matrix["row_normalized"], LABELS):
        assert (None in row) == (recall[name] is None)
        assert recall[name] is None or sum(row) == pytest.approx(1.0)
    no_splits = folder / "no_splits.csv"
    no_splits.write_text(
        "\n".join(line.rsplit(",", 1)[0] for line in open(manifest).read().splitlines()) + "\n"
    )
    assert main(["evaluate", model_dir, "--manifest", str(no_splits), "--split", "test"]) == EXIT_BAD_INPUT
    assert "no 'split' column" in capsys.readouterr().err
    # A manifest with splits and no --split is ambiguous.
    assert main(["evaluate", model_dir, "--manifest", manifest]) == EXIT_BAD_INPUT
    assert "--split" in capsys.readouterr().err


def test_evaluate_binary_task_reports_acc_and_eer(corpus, tmp_path, capsys):
    folder, rows = corpus
    binary_dir = save_classifier(tmp_path / "binary", ["no", "yes"])
    binary_rows = [
        {**row, "label": ["no", "yes"][index % 2], "split": "test"} for index, row in enumerate(rows)
    ]
    manifest = write_manifest(folder, binary_rows, name="binary.csv")
    assert main(["evaluate", binary_dir, "--manifest", manifest, "--split", "test"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"wa", "ua", "macro_f1", "acc", "eer"} <= set(metrics)
    assert 0.0 <= metrics["eer"] <= 1.0


def test_evaluate_of_one_class_writes_strict_json_with_the_undefined_eer_as_null(corpus, tmp_path, capsys):
    folder, rows = corpus
    binary_dir = save_classifier(tmp_path / "binary", ["no", "yes"])
    one_class = [{**row, "label": "yes", "split": "test"} for row in rows]
    manifest = write_manifest(folder, one_class, name="one_class.csv")
    output = tmp_path / "metrics.json"
    assert (
        main(["evaluate", binary_dir, "--manifest", manifest, "--split", "test", "--output", str(output)])
        == 0
    )

    def refuse_constant(name):
        raise AssertionError(f"{name} is not strict JSON")

    for text in (capsys.readouterr().out, output.read_text()):
        metrics = json.loads(text, parse_constant=refuse_constant)
        assert metrics["eer"] is None  # one class: no false-acceptance rate, the EER is undefined
        assert metrics["acc"] is not None


def test_bad_rows_stop_with_file_and_line(model_dir, corpus, tmp_path, capsys):
    folder, rows = corpus
    (folder / "noise.wav").write_bytes(b"RIFF but not really a wav file")
    missing = {**rows[1], "id": "gone", "audio": "missing.wav"}  # line 3: caught by the manifest loader
    undecodable = {**rows[2], "id": "bad", "audio": "noise.wav"}  # line 5: caught when decoding
    manifest = write_manifest(folder, [rows[0], missing, rows[3], undecodable, rows[4]], name="bad.csv")
    output = tmp_path / "out.jsonl"

    assert main(["predict", model_dir, "--manifest", manifest, "--output", str(output)]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "bad.csv:3" in error[0] and "--skip-bad-rows" in error[0]

    good = write_manifest(folder, [rows[0], rows[3], undecodable, rows[4]], name="bad_audio.csv")
    assert main(["predict", model_dir, "--manifest", good, "--output", str(output)]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err
    assert "bad_audio.csv:4" in error and "noise.wav" in error and "Traceback" not in error


def test_skip_bad_rows_predicts_the_others_and_reports_the_skips(model_dir, corpus, tmp_path, capsys):
    folder, rows = corpus
    (folder / "noise.wav").write_bytes(b"RIFF but not really a wav file")
    missing = {**rows[1], "id": "gone", "audio": "missing.wav"}
    undecodable = {**rows[2], "id": "bad", "audio": "noise.wav"}
    manifest = write_manifest(folder, [rows[0], missing, rows[3], undecodable, rows[4]], name="skip.csv")
    output = tmp_path / "out.jsonl"
    args = ["predict", model_dir, "--manifest", manifest, "--output", str(output), "--skip-bad-rows"]
    assert main([*args, "--batch-size", "2"]) == 0
    assert [p["id"] for p in read_jsonl(output)] == [rows[0]["id"], rows[3]["id"], rows[4]["id"]]
    error = capsys.readouterr().err
    assert "skipped 2 bad row(s)" in error and "skip.csv:3" in error and "skip.csv:5" in error


def test_console_entry_point_runs_as_a_subprocess(model_dir, corpus, tmp_path):
    folder, rows = corpus
    manifest = write_manifest(folder, rows[:2], name="two.csv")
    output = tmp_path / "two.jsonl"
    command = [sys.executable, "-m", "turbo_hf.cli", "predict", model_dir, "--manifest", manifest]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [*command, "--output", str(output)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert [p["id"] for p in read_jsonl(output)] == ["u0", "u1"]


def test_usage_errors_exit_with_code_2(model_dir, corpus, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict"])
    assert exit_info.value.code == 2
    assert one_error_line(capsys, "turbo-hf predict") == (
        "turbo-hf predict: error: the following arguments are required: model"
    )
    folder, _ = corpus
    assert main(["predict", model_dir, "--audio", str(folder / "utt0.wav")]) == EXIT_BAD_INPUT
    assert "--text" in capsys.readouterr().err
    audio = str(folder / "utt0.wav")
    assert main(["predict", str(folder / "no_model"), "--audio", audio, "--text", "x"]) == EXIT_BAD_INPUT
    assert "cannot load model" in capsys.readouterr().err


def test_predict_with_asr_transcribes_rows_without_text(model_dir, corpus, tmp_path):
    from test_pipeline import save_tiny_whisper  # the offline tiny Whisper of the pipeline tests

    folder, rows = corpus
    untranscribed = {**rows[1], "text": ""}
    manifest = write_manifest(folder, [rows[0], untranscribed], name="asr.csv")
    asr_dir = save_tiny_whisper(tmp_path / "whisper")
    output = tmp_path / "asr.jsonl"
    args = ["predict", model_dir, "--manifest", manifest, "--asr-model", asr_dir, "--output", str(output)]
    assert main(args) == 0
    with_text, transcribed = read_jsonl(output)
    assert "transcript" not in with_text
    assert isinstance(transcribed["transcript"], str) and transcribed["transcript"]
    assert transcribed["label"] in LABELS


def _manifest_with_broken_train_rows(folder, rows, name):
    """rows[0] and rows[1] become train rows with a missing / undecodable file; then rows[2:] as given."""
    (folder / "noise.wav").write_bytes(b"RIFF but not really a wav file")
    missing = {**rows[0], "id": "gone", "audio": "missing.wav", "split": "train"}  # line 2
    undecodable = {**rows[1], "id": "bad", "audio": "noise.wav", "split": "train"}  # line 3
    return write_manifest(folder, [missing, undecodable, *rows[2:]], name=name)


def test_evaluate_split_ignores_broken_files_of_other_splits(model_dir, corpus, capsys):
    folder, rows = corpus
    manifest = _manifest_with_broken_train_rows(folder, rows, "broken_train.csv")
    assert main(["evaluate", model_dir, "--manifest", manifest, "--split", "test"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["num_examples"] == sum(r["split"] == "test" for r in rows[2:])
    assert main(["evaluate", model_dir, "--manifest", manifest, "--split", "train"]) == EXIT_BAD_INPUT
    assert "broken_train.csv:2" in capsys.readouterr().err


def test_skip_bad_rows_reports_only_rows_of_the_chosen_split(model_dir, corpus, capsys):
    folder, rows = corpus
    bad_test = {
        **rows[3],
        "id": "bad_test",
        "audio": "noise.wav",
    }  # line 4, a test row that cannot be decoded
    manifest = _manifest_with_broken_train_rows(folder, [*rows[:2], bad_test, *rows[2:]], "skip_split.csv")
    args = ["evaluate", model_dir, "--manifest", manifest, "--split", "test", "--skip-bad-rows"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["num_examples"] == sum(r["split"] == "test" for r in rows[2:])
    assert "skipped 1 bad row(s)" in captured.err and "skip_split.csv:4" in captured.err
    assert "skip_split.csv:2" not in captured.err and "skip_split.csv:3" not in captured.err


def test_predict_split_predicts_only_that_split_in_file_order(model_dir, corpus, tmp_path, capsys):
    folder, rows = corpus
    manifest = _manifest_with_broken_train_rows(folder, rows, "predict_split.csv")
    output = tmp_path / "test.jsonl"
    args = ["predict", model_dir, "--manifest", manifest, "--output", str(output)]
    assert main([*args, "--split", "TEST"]) == 0
    assert [p["id"] for p in read_jsonl(output)] == [r["id"] for r in rows[2:] if r["split"] == "test"]
    assert main(args) == EXIT_BAD_INPUT  # without --split every row is predicted, the broken ones too
    assert "predict_split.csv:2" in capsys.readouterr().err
    assert main([*args, "--split", "dev"]) == EXIT_BAD_INPUT
    assert "no rows of split(s) ['validation']" in capsys.readouterr().err


def test_predict_with_asr_reads_a_manifest_without_a_text_column(model_dir, corpus, tmp_path, capsys):
    from test_pipeline import save_tiny_whisper

    folder, rows = corpus
    manifest = folder / "no_text.csv"
    manifest.write_text(
        "id,audio\n" + "".join(f"{r['id']},{r['audio']}\n" for r in rows[:3]), encoding="utf-8"
    )
    output = tmp_path / "no_text.jsonl"
    args = ["predict", model_dir, "--manifest", str(manifest), "--output", str(output)]
    assert main(args) == EXIT_BAD_INPUT  # without a recognizer the transcripts are needed
    assert "missing column(s) ['text']" in capsys.readouterr().err
    asr_dir = save_tiny_whisper(tmp_path / "whisper")
    assert main([*args, "--asr-model", asr_dir]) == 0
    predictions = read_jsonl(output)
    assert [p["id"] for p in predictions] == [r["id"] for r in rows[:3]]
    assert all(isinstance(p["transcript"], str) and p["label"] in LABELS for p in predictions)
    # A column named on the command line stays required, so that a typo in it is not ignored.
    assert main([*args, "--asr-model", asr_dir, "--text-column", "transcript"]) == EXIT_BAD_INPUT
    assert "missing column(s) ['transcript']" in capsys.readouterr().err


def test_audio_shorter_than_the_encoder_needs_is_a_bad_row_named_by_its_line(model_dir, corpus, capsys):
    folder, rows = corpus
    sf.write(folder / "click.wav", np.zeros(100, np.float32), 16000)  # 6 ms: under the 185-sample field
    manifest = write_manifest(folder, [rows[0], {**rows[1], "audio": "click.wav"}], name="short.csv")
    assert main(["predict", model_dir, "--manifest", manifest, "--no-progress"]) == EXIT_BAD_INPUT
    assert "short.csv:3: audio too short: 100 samples" in capsys.readouterr().err
    assert main(["predict", model_dir, "--manifest", manifest, "--no-progress", "--skip-bad-rows"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1 and "skipped 1 bad row(s)" in captured.err
    assert (
        main(["predict", model_dir, "--audio", str(folder / "click.wav"), "--text", "hi"]) == EXIT_BAD_INPUT
    )
    assert "needs at least 185" in capsys.readouterr().err


@pytest.mark.parametrize("split", ["test-a", ""])
def test_a_split_that_is_no_split_name_is_a_usage_error(model_dir, corpus, capsys, split):
    folder, rows = corpus
    manifest = write_manifest(folder, rows, name="odd_split.csv")
    assert main(["evaluate", model_dir, "--manifest", manifest, "--split", split]) == EXIT_BAD_INPUT
    assert "odd_split.csv: splits" in capsys.readouterr().err


# Run in a fresh interpreter: the test process has imported torch already.
_HELP_AND_USAGE_ERRORS = """
import contextlib, io, json, sys
from turbo_hf.cli import main
codes = []
for argv in (["--help"], ["predict", "--help"], ["evaluate", "--help"], ["predict"], ["predict", "m"],
             ["evaluate", "m"], ["nonsense"], ["predict", "m", "--manifest", "x.csv", "--top-k", "0"],
             ["evaluate", "m", "--manifest", "x.csv", "--output", "no/such/folder/m.json"]):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as exit:
            codes.append(exit.code)
print(json.dumps({"codes": codes, "heavy": [m for m in ("torch", "transformers", "datasets", "numpy")
                                             if m in sys.modules]}))
"""


def test_help_and_usage_errors_import_neither_torch_nor_transformers():
    done = subprocess.run(
        [sys.executable, "-c", _HELP_AND_USAGE_ERRORS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["codes"] == [0, 0, 0, 2, EXIT_BAD_INPUT, EXIT_BAD_INPUT, 2, 2, 2]
    assert result["heavy"] == []


# -- flag values and other inputs: one line, exit code 2, checked before the model is loaded ---------------
_BAD_FLAGS = [
    ("predict", "--top-k", "0"),
    ("predict", "--top-k", "-1"),
    ("predict", "--top-k", "two"),
    ("predict", "--batch-size", "0"),
    ("evaluate", "--batch-size", "-1"),
    ("predict", "--max-duration", "0"),
    ("evaluate", "--max-duration", "nan"),
    ("predict", "--max-duration", "-3"),
    ("predict", "--output", "{tmp}/no_folder/p.jsonl"),
    ("evaluate", "--output", "{tmp}/no_folder/metrics.json"),
    ("predict", "--output", "{tmp}"),  # a folder, not a file
]


@pytest.mark.parametrize("command, flag, value", _BAD_FLAGS)
def test_bad_flag_values_are_one_line_and_exit_2_before_the_model_loads(
    corpus, tmp_path, capsys, command, flag, value
):
    folder, rows = corpus
    manifest = write_manifest(folder, rows[:2], name="flags.csv")
    no_model = str(tmp_path / "no_model")  # loading it would fail: the flag must be checked first
    with pytest.raises(SystemExit) as exit_info:
        main([command, no_model, "--manifest", manifest, flag, value.format(tmp=tmp_path)])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert one_error_line(capsys, f"turbo-hf {command}").startswith(
        f"turbo-hf {command}: error: argument {flag}"
    )


def test_export_opset_must_be_a_positive_integer(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", model_dir, "--onnx", str(tmp_path / "onnx"), "--opset", "0"])
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert "argument --opset" in one_error_line(capsys, "turbo-hf export")
    assert not (tmp_path / "onnx").exists()


_NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize(
    "device", ["gpu", "cuda:99", "cuda:x", "tpu:0", pytest.param("cuda:0", marks=_NO_CUDA)]
)
def test_a_device_this_machine_lacks_is_one_line_before_the_model_loads(corpus, tmp_path, capsys, device):
    folder, _ = corpus
    no_model = str(tmp_path / "no_model")
    args = ["predict", no_model, "--audio", str(folder / "utt0.wav"), "--text", "hi", "--device", device]
    assert main(args) == EXIT_BAD_INPUT
    line = one_error_line(capsys, "turbo-hf predict")
    assert f"--device {device}" in line and "cannot load model" not in line


def test_asr_model_that_cannot_be_loaded_is_named_as_such(model_dir, corpus, tmp_path, capsys):
    folder, _ = corpus
    (tmp_path / "empty").mkdir()
    args = ["predict", model_dir, "--audio", str(folder / "utt0.wav"), "--asr-model", str(tmp_path / "empty")]
    assert main(args) == EXIT_BAD_INPUT
    assert f"cannot load --asr-model {tmp_path / 'empty'}" in one_error_line(capsys, "turbo-hf predict")


def test_debug_shows_the_traceback_of_an_input_error(corpus, tmp_path):
    folder, _ = corpus
    args = ["predict", str(tmp_path / "no_model"), "--audio", str(folder / "utt0.wav"), "--text", "hi"]
    assert main(args) == EXIT_BAD_INPUT
    with pytest.raises(UserError, match="cannot load model") as raised:
        main([*args, "--debug"])
    assert isinstance(raised.value.__cause__, OSError)  # what transformers raised, for a bug report


def test_top_k_lists_the_best_labels_of_each_manifest_row(model_dir, corpus, tmp_path):
    folder, rows = corpus
    manifest = write_manifest(folder, rows, name="top_k.csv")
    output = tmp_path / "top_k.jsonl"
    args = ["predict", model_dir, "--manifest", manifest, "--output", str(output), "--no-progress"]
    assert main([*args, "--top-k", "2", "--device", "cpu"]) == 0
    predictions = read_jsonl(output)
    assert len(predictions) == len(rows)
    for prediction in predictions:
        labels = prediction["labels"]  # the pipeline's form: best first
        assert len(labels) == 2 and labels[0] == {"label": prediction["label"], "score": prediction["score"]}
        assert labels[0]["score"] >= labels[1]["score"]
    assert main(args) == 0
    assert all("labels" not in prediction for prediction in read_jsonl(output))


@pytest.fixture
def audio_lengths_seen(monkeypatch):
    """The number of audio samples of each batch that reaches the model's forward."""
    seen, forward = [], TurboForAudioTextClassification.forward

    def spy(self, **inputs):
        seen.append(inputs["input_values"].shape[-1])
        return forward(self, **inputs)

    monkeypatch.setattr(TurboForAudioTextClassification, "forward", spy)
    return seen


def test_max_duration_crops_long_clips_and_says_how_many(
    model_dir, corpus, tmp_path, capsys, audio_lengths_seen
):
    folder, rows = corpus
    sf.write(
        folder / "long.wav", np.random.default_rng(1).uniform(-0.1, 0.1, 48000).astype(np.float32), 16000
    )
    manifest = write_manifest(folder, [rows[0], {**rows[1], "audio": "long.wav"}], name="long.csv")
    args = ["predict", model_dir, "--manifest", manifest, "--no-progress", "--batch-size", "1"]
    assert main([*args, "--max-duration", "1.5"]) == 0
    assert audio_lengths_seen == [8000, 24000]  # utt0 is 0.5 s; the 3 s clip keeps its centre 1.5 s
    assert "1 clip(s) longer than --max-duration 1.5 s" in capsys.readouterr().err
    audio_lengths_seen.clear()
    assert main([*args, "--max-duration", "none"]) == 0
    assert audio_lengths_seen == [8000, 48000] and "longer than" not in capsys.readouterr().err
    audio_lengths_seen.clear()
    one = ["predict", model_dir, "--audio", str(folder / "long.wav"), "--text", "hi", "--max-duration", "2"]
    assert main(one) == 0
    assert audio_lengths_seen == [32000] and "longer than --max-duration 2 s" in capsys.readouterr().err
    assert main([*one[:-1], "0.001"]) == EXIT_BAD_INPUT  # under the encoder's 185 samples
    assert "max_duration=0.001 s keeps 16 samples" in one_error_line(capsys, "turbo-hf predict")


def test_an_error_that_is_no_input_error_keeps_its_traceback(model_dir, corpus, monkeypatch):
    def broken_forward(self, **inputs):  # a bug in the model code, not in what the user gave
        raise ValueError("shapes do not match")

    monkeypatch.setattr(TurboForAudioTextClassification, "forward", broken_forward)
    folder, _ = corpus
    with pytest.raises(ValueError, match="shapes do not match"):
        main(["predict", model_dir, "--audio", str(folder / "utt0.wav"), "--text", "hi"])


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_output_naming_the_manifest_is_refused_and_the_manifest_kept(model_dir, corpus, capsys, command):
    folder, rows = corpus
    manifest = write_manifest(folder, rows, name=f"keep_{command}.csv")
    before = open(manifest, encoding="utf-8").read()
    args = [command, model_dir, "--manifest", manifest, "--output", manifest]
    if command == "evaluate":
        args += ["--split", "test"]
    assert main(args) == EXIT_BAD_INPUT
    assert "is the --manifest file" in one_error_line(capsys, f"turbo-hf {command}")
    assert open(manifest, encoding="utf-8").read() == before


@pytest.mark.parametrize(
    "name, message",
    [("-", "standard input is not supported"), ("folder", "is a folder"), ("gone.csv", "file not found")],
)
def test_the_files_named_are_checked_before_the_model_loads(corpus, tmp_path, capsys, name, message):
    (tmp_path / "folder").mkdir()
    path = name if name == "-" else str(tmp_path / name)
    # The model folder does not exist either: the manifest is named first, before seconds of loading.
    assert main(["predict", str(tmp_path / "no_model"), "--manifest", path]) == EXIT_BAD_INPUT
    line = one_error_line(capsys, "turbo-hf predict")
    assert f"--manifest {path}" in line and message in line
