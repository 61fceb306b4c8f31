"""load_manifest: CSV / TSV / JSONL manifests to datasets, with errors that name file and line."""

from __future__ import annotations

import csv
import json
import logging
import re

import pytest
import soundfile as sf
from conftest import TurboModelTester
from datasets import ClassLabel, Dataset, DatasetDict
from test_audio import wav_with_header_rate

from turbo_hf import DataCollatorForAudioText
from turbo_hf.data.manifest import ManifestError, load_manifest


@pytest.fixture
def clips(write_wav):
    """Three short wav files under tmp_path/clips, of 0.5, 0.25 and 0.75 s."""
    return [write_wav(f"clips/{i}.wav", seconds=s) for i, s in enumerate((0.5, 0.25, 0.75))]


def _write_csv(path, header, rows, delimiter=","):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _rows(with_split=True):
    rows = [
        ["clips/0.wav", "hello world", "yes", "train"],
        ["clips/1.wav", "happy", "no", "dev"],
        ["clips/2.wav", "sad", "yes", "test"],
    ]
    return rows if with_split else [row[:3] for row in rows]


def _assert_names(err, file_name, line):
    assert re.search(rf"{re.escape(file_name)}:{line}\b", str(err.value)), str(err.value)


@pytest.mark.parametrize("extension", [".csv", ".tsv"])
def test_delimited_manifest_loads_with_splits(tmp_path, clips, extension):
    path = _write_csv(
        tmp_path / f"m{extension}",
        ["audio", "text", "label", "split"],
        _rows(),
        delimiter="," if extension == ".csv" else "\t",
    )
    data = load_manifest(path)
    assert isinstance(data, DatasetDict)
    assert list(data) == ["train", "validation", "test"]  # "dev" is the validation alias
    assert "split" not in data["train"].column_names
    assert data["train"].column_names == ["id", "audio", "text", "label", "duration"]
    row = data["validation"][0]
    assert row["audio"] == str(clips[1]) and row["text"] == "happy"
    assert row["id"] == "m:3"  # stem:line, the first data row is line 2
    assert data["train"].features["label"].names == ["no", "yes"]
    assert data["validation"][0]["label"] == 0


def test_jsonl_manifest_loads_without_split_as_dataset(tmp_path, clips):
    rows = [{"audio": str(clips[0]), "text": "hello", "label": 1, "speaker": "A", "age": 31}]
    rows.append({"audio": "clips/1.wav", "text": None, "label": 0, "speaker": "B", "age": 40})
    data = load_manifest(_write_jsonl(tmp_path / "m.jsonl", rows))
    assert isinstance(data, Dataset)
    assert data.column_names == ["id", "audio", "text", "label", "duration", "speaker", "age"]
    assert data.features["label"].names == ["0", "1"]  # integer labels keep their string form
    assert data["label"] == [1, 0]
    assert data["audio"] == [str(clips[0]), str(clips[1])]  # absolute and relative paths
    assert data["age"] == ["31", "40"] and data["text"] == ["hello", ""]


def test_json_extension_reads_json_lines(tmp_path, clips):
    data = load_manifest(
        _write_jsonl(tmp_path / "m.json", [{"audio": "clips/0.wav", "text": "a", "label": "x"}])
    )
    assert len(data) == 1


def test_integer_labels_sort_numerically(tmp_path, write_wav):
    write_wav("a.wav", seconds=0.1)
    rows = [["a.wav", "t", label] for label in ("10", "2", "0")]
    data = load_manifest(_write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows))
    assert data.features["label"].names == ["0", "2", "10"]
    assert data["label"] == [2, 1, 0]


def test_custom_column_names_and_id_column(tmp_path, clips):
    rows = [["u1", "clips/0.wav", "hi", "b", "train", "x"], ["u2", "clips/1.wav", "yo", "a", "VALID", "y"]]
    path = _write_csv(tmp_path / "m.csv", ["utt", "wav", "transcript", "class", "subset", "note"], rows)
    data = load_manifest(
        path,
        audio_column="wav",
        text_column="transcript",
        label_column="class",
        split_column="subset",
        id_column="utt",
    )
    assert list(data) == ["train", "validation"]
    assert data["train"].column_names == ["id", "audio", "text", "label", "duration", "note"]
    assert data["validation"][0] == {
        "id": "u2",
        "audio": str(clips[1]),
        "text": "yo",
        "label": 0,
        "duration": 0.25,
        "note": "y",
    }


def test_labels_argument_fixes_class_ids(tmp_path, clips):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], _rows(with_split=False))
    data = load_manifest(path, labels=["yes", "no", "maybe"])
    assert data.features["label"] == ClassLabel(names=["yes", "no", "maybe"])
    assert data["label"] == [0, 1, 0]


def test_duration_matches_written_file(tmp_path, write_wav):
    write_wav("long.wav", seconds=1.5, sampling_rate=8000)
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], [["long.wav", "t", "a"]])
    assert load_manifest(path)["duration"] == [pytest.approx(1.5)]
    assert "duration" not in load_manifest(path, compute_duration=False).column_names
    assert load_manifest(path, num_proc=2)["duration"] == [pytest.approx(1.5)]


def test_unlabelled_manifest_for_prediction(tmp_path, clips):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], _rows(with_split=False))
    data = load_manifest(path, label_column=None)
    assert data.column_names == ["id", "audio", "text", "duration"]  # the manifest's label is not kept


def test_output_feeds_the_collator(tmp_path, clips):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label", "split"], _rows())
    data = load_manifest(path)
    collator = DataCollatorForAudioText(TurboModelTester().processor)
    batch = collator([data["train"][0], data["test"][0]])
    assert batch["labels"].tolist() == [1, 1]
    assert batch["input_values"].shape == (2, 12000)  # 0.75 s at 16 kHz, the longer clip
    unlabelled = load_manifest(path, label_column=None, split_column=None)
    assert "labels" not in collator(list(unlabelled))


# Errors: each names the file and the 1-based line, and says what was expected.


def test_unsupported_extension(tmp_path):
    path = tmp_path / "m.xlsx"
    path.write_text("audio,text,label\n")
    with pytest.raises(ManifestError, match=r"m\.xlsx.*\.csv, \.tsv, \.jsonl"):
        load_manifest(path)


def test_missing_column_lists_columns_found_and_is_never_skipped(tmp_path, clips):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text"], [["clips/0.wav", "hi"]])
    with pytest.raises(
        ManifestError, match=r"m\.csv:1: missing column\(s\) \['label'\]; found columns \['audio', 'text'\]"
    ):
        load_manifest(path, on_bad_row="skip")
    jsonl = _write_jsonl(tmp_path / "m.jsonl", [{"audio": "clips/0.wav", "label": "a"}])
    with pytest.raises(ManifestError, match=r"m\.jsonl: missing column\(s\) \['text'\]"):
        load_manifest(jsonl)


@pytest.mark.parametrize(
    "bad_row, message",
    [
        (["", "t", "a"], "empty audio path"),
        (["nowhere.wav", "t", "a"], "audio file not found: .*nowhere.wav"),
        (["empty.wav", "t", "a"], "empty.wav is empty \\(0 frames\\)"),
        (["garbage.wav", "t", "a"], "unreadable audio header.*garbage.wav"),
        # 20,000 samples whose header says 1 Hz: not a 5.5-hour file, a damaged header.
        (["liar.wav", "t", "a"], r"liar\.wav: its header gives a sampling rate of 1 Hz.*1000 to 384000 Hz"),
        (["clips/0.wav", "t", "c"], r"label 'c' is not one of the labels \['a', 'b'\]"),
        (["clips/0.wav", "t"], r"expected 3 fields \(audio, text, label\), found 2"),
    ],
)
def test_bad_csv_row_names_file_and_line(tmp_path, clips, bad_row, message):
    sf.write(tmp_path / "empty.wav", [], 16000)
    (tmp_path / "garbage.wav").write_bytes(b"not a wav file at all" * 10)
    wav_with_header_rate(tmp_path / "liar.wav", header_rate=1)
    rows = [
        ["clips/0.wav", "t", "a"],
        ["clips/1.wav", 'multi\nline "quoted"', "b"],
        bad_row,
        ["clips/2.wav", "t", "a"],
    ]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    with pytest.raises(ManifestError, match=message) as err:
        load_manifest(path, labels=["a", "b"])
    _assert_names(err, "m.csv", 5)  # header 1, rows 2, 3-4 (a quoted newline), 5
    data, skipped = load_manifest(path, labels=["a", "b"], on_bad_row="skip", return_skipped=True)
    assert len(data) == 3 and [line for line, _ in skipped] == [5]


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"audio": "clips/0.wav", "text": "t", "label": "a"', "malformed JSON"),
        ('["clips/0.wav", "t", "a"]', "expected a JSON object per line, found list"),
        ('{"audio": "clips/0.wav", "label": "a"}', "no 'text' field"),
    ],
)
def test_bad_json_line_names_file_and_line(tmp_path, clips, bad_line, message):
    good = json.dumps({"audio": "clips/0.wav", "text": "t", "label": "a"})
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{good}\n{bad_line}\n{good}\n")
    with pytest.raises(ManifestError, match=message) as err:
        load_manifest(path)
    _assert_names(err, "m.jsonl", 4)  # physical line, the blank line 2 counts
    assert len(load_manifest(path, on_bad_row="skip")) == 3


def test_bad_row_spanning_lines_is_reported_at_its_first_line(tmp_path, clips):
    path = tmp_path / "m.csv"
    path.write_text('audio,text,label\n\nclips/0.wav,t,a\n\nclips/1.wav,"two\nlines",c\n')
    with pytest.raises(ManifestError, match="label 'c'") as err:
        load_manifest(path, labels=["a"])
    _assert_names(err, "m.csv", 5)


def test_raise_reports_first_bad_line_and_how_many_more(tmp_path, clips):
    rows = [["clips/0.wav", "t", "a"], ["gone.wav", "t", "a"], ["", "t", "a"]]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    with pytest.raises(ManifestError, match=r"m\.csv:3: audio file not found.*\(1 more bad rows\)"):
        load_manifest(path)


def test_skip_counts_and_logs_bad_rows_once(tmp_path, clips, caplog):
    rows = [["clips/0.wav", "t", "a"], ["gone.wav", "t", "a"], ["", "t", "a"], ["clips/1.wav", "t", "b"]]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True)
    assert data["audio"] == [str(clips[0]), str(clips[1])]
    assert [(line, reason.split(":")[0]) for line, reason in skipped] == [
        (3, "audio file not found"),
        (4, "empty audio path in column 'audio'"),
    ]
    warnings = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2 of 4 rows" in warnings[0] and "m.csv:3" in warnings[0]


def test_empty_transcripts_are_kept_with_one_warning(tmp_path, clips, caplog):
    rows = [["clips/0.wav", "", "a"], ["clips/1.wav", "  ", "a"], ["clips/2.wav", "hi", "b"]]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        data = load_manifest(path)
    assert data["text"] == ["", "", "hi"]
    warnings = [r.getMessage() for r in caplog.records if "empty transcript" in r.getMessage()]
    assert len(warnings) == 1 and "2 of 3 rows" in warnings[0] and "m.csv:2, m.csv:3" in warnings[0]


def test_all_rows_bad_is_an_error_even_when_skipping(tmp_path):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], [["gone.wav", "t", "a"]])
    with pytest.raises(ManifestError, match=r"m\.csv: no usable rows \(1 read, 1 skipped\)"):
        load_manifest(path, on_bad_row="skip")


def test_missing_manifest_and_bad_option(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.csv"):
        load_manifest(tmp_path / "nothing.csv")
    with pytest.raises(ValueError, match="on_bad_row"):
        load_manifest(tmp_path / "nothing.csv", on_bad_row="ignore")


def test_line_column_keeps_each_rows_file_line_across_splits_and_skips(tmp_path, clips):
    rows = _rows()
    rows.insert(1, ["clips/missing.wav", "gone", "no", "train"])  # line 3, skipped
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label", "split"], rows)
    data = load_manifest(path, on_bad_row="skip", line_column="line")
    assert data["train"]["line"] == [2] and data["validation"]["line"] == [4] and data["test"]["line"] == [5]
    with pytest.raises(ManifestError, match="line_column 'text'"):
        load_manifest(path, line_column="text")


@pytest.mark.parametrize(
    "values, odd_line, odd_value",
    [
        (["0", "1", "yes", "1"], 4, "yes"),  # one word among integers
        (["angry", "3", "happy", "angry"], 3, "3"),  # one integer among words
        (["1", "x", "0", "y"], 3, "x"),  # a tie: the first row's kind (integer) is the expected one
    ],
)
def test_inferred_labels_mixing_integers_and_words_name_the_odd_line(
    tmp_path, clips, values, odd_line, odd_value
):
    rows = [[f"clips/{index % 3}.wav", "t", value] for index, value in enumerate(values)]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    for on_bad_row in ("raise", "skip"):  # the row is only odd relative to the others: never skipped
        with pytest.raises(ManifestError, match=rf"label '{odd_value}'.*labels=\[") as err:
            load_manifest(path, on_bad_row=on_bad_row)
        _assert_names(err, "m.csv", odd_line)
    data = load_manifest(path, labels=sorted(set(values)))
    assert data.features["label"].names == sorted(set(values))


def test_inferred_labels_all_words_or_all_integers_still_load(tmp_path, clips):
    words = _write_csv(
        tmp_path / "w.csv", ["audio", "text", "label"], [["clips/0.wav", "t", v] for v in "bab"]
    )
    assert load_manifest(words).features["label"].names == ["a", "b"]
    numbers = _write_csv(
        tmp_path / "n.csv", ["audio", "text", "label"], [["clips/0.wav", "t", v] for v in ("-1", "3", "0")]
    )
    assert load_manifest(numbers).features["label"].names == ["-1", "0", "3"]


def test_a_mixed_label_on_a_skipped_bad_row_does_not_count(tmp_path, clips):
    rows = [["clips/0.wav", "t", "0"], ["gone.wav", "t", "yes"], ["clips/1.wav", "t", "1"]]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True)
    assert data.features["label"].names == ["0", "1"] and [line for line, _ in skipped] == [3]


def _manifest_with_broken_train_rows(tmp_path):
    """Lines 2-3 are train rows whose audio is missing / not audio; lines 4-6 are dev, test, test."""
    (tmp_path / "garbage.wav").write_bytes(b"not a wav file at all" * 10)
    wav_with_header_rate(tmp_path / "liar.wav", header_rate=1)
    rows = [
        ["gone.wav", "t", "no", "train"],
        ["garbage.wav", "t", "maybe", "TRAIN"],
        ["clips/1.wav", "t", "no", "dev"],
        ["clips/0.wav", "t", "yes", "test"],
        ["clips/2.wav", "t", "yes", "test"],
    ]
    return _write_csv(tmp_path / "m.csv", ["audio", "text", "label", "split"], rows)


def test_splits_keeps_only_those_rows_and_checks_nothing_of_the_others(tmp_path, clips):
    path = _manifest_with_broken_train_rows(tmp_path)
    with pytest.raises(ManifestError, match="m.csv:2: audio file not found"):
        load_manifest(path)
    data, skipped = load_manifest(path, splits=("test",), line_column="line", return_skipped=True)
    assert list(data) == ["test"] and skipped == []
    assert data["test"]["line"] == [5, 6] and data["test"]["audio"] == [str(clips[0]), str(clips[2])]
    # class ids are those of the whole file, not only of the test rows
    assert data["test"].features["label"].names == ["maybe", "no", "yes"]
    both = load_manifest(path, splits=["test", "dev"])  # dev is read as validation
    assert list(both) == ["validation", "test"] and len(both["validation"]) == 1
    assert list(load_manifest(path, splits="Test")) == ["test"]


def test_splits_bad_rows_of_the_kept_splits_name_their_own_lines(tmp_path, clips, caplog):
    path = _manifest_with_broken_train_rows(tmp_path)
    rows = list(csv.reader(path.read_text().splitlines()))
    rows.insert(4, ["nowhere.wav", "t", "yes", "test"])  # line 5, between the dev row and the test rows
    rows.insert(5, ["clips/0.wav", "t", "yes", ""])  # line 6: its split cannot be read, so it is checked
    path = _write_csv(tmp_path / "m.csv", rows[0], rows[1:])
    with pytest.raises(
        ManifestError, match=r"audio file not found.*nowhere\.wav.*\(1 more bad rows\)"
    ) as err:
        load_manifest(path, splits=("test",))
    _assert_names(err, "m.csv", 5)
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        data, skipped = load_manifest(
            path, splits=("test",), on_bad_row="skip", line_column="line", return_skipped=True
        )
    assert [line for line, _ in skipped] == [5, 6] and "not a split name" in skipped[1].reason
    assert data["test"]["line"] == [7, 8]
    assert "skipped 2 of 4 rows of split(s) ['test']" in caplog.text


def test_splits_that_cannot_be_kept_are_errors(tmp_path, clips):
    path = _manifest_with_broken_train_rows(tmp_path)
    with pytest.raises(
        ManifestError, match=r"no rows of split\(s\) \['tset'\].*\['test', 'train', 'validation'\]"
    ):
        load_manifest(path, splits=("tset",))
    no_split = _write_csv(tmp_path / "n.csv", ["audio", "text", "label"], _rows(with_split=False))
    with pytest.raises(ManifestError, match=r"n\.csv: cannot keep split\(s\) \['test'\].*no 'split' column"):
        load_manifest(no_split, splits=("test",))
    with pytest.raises(ValueError, match="not a split name"):
        load_manifest(path, splits=("te st",))
    only_bad = _write_csv(
        tmp_path / "b.csv",
        ["audio", "text", "label", "split"],
        [["clips/0.wav", "t", "a", "train"], ["gone.wav", "t", "a", "test"]],
    )
    with pytest.raises(ManifestError, match=r"no usable rows of split\(s\) \['test'\] \(1 read"):
        load_manifest(only_bad, splits=("test",), on_bad_row="skip")


def test_text_optional_loads_a_manifest_without_transcripts(tmp_path, clips, caplog):
    path = _write_csv(tmp_path / "m.csv", ["audio", "label"], [["clips/0.wav", "a"], ["clips/1.wav", "b"]])
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['text'\]"):
        load_manifest(path)
    with caplog.at_level(logging.WARNING, logger="turbo_hf"):
        data = load_manifest(path, text_optional=True)
    assert data["text"] == ["", ""] and data["audio"] == [str(clips[0]), str(clips[1])]
    assert not [r for r in caplog.records if "empty transcript" in r.getMessage()]  # expected, not warned
    # With the column present it is read as usual; a JSONL row without the key has no transcript.
    rows = [{"audio": "clips/0.wav", "text": " hi ", "label": "a"}, {"audio": "clips/1.wav", "label": "b"}]
    jsonl = _write_jsonl(tmp_path / "m.jsonl", rows)
    assert load_manifest(jsonl, text_optional=True)["text"] == ["hi", ""]
    with pytest.raises(ManifestError, match=r"m\.jsonl:2: no 'text' field"):
        load_manifest(jsonl)
