"""load_manifest on hostile input: each bad input is one error naming file and line, or a counted skip."""

from __future__ import annotations

import json

import pytest
from test_manifest import _assert_names, _write_csv, clips  # noqa: F401  (clips: a fixture)

from turbo_hf.data.manifest import ManifestError, load_manifest

pytestmark = pytest.mark.usefixtures("clips")  # clips/0.wav, clips/1.wav, clips/2.wav under tmp_path

_HEADER = "audio,text,label,split\n"


def _write(path, text):
    path.write_text(text)
    return path


# -- CSV quoting and field length --------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        # a stray opening quote whose closing quote is two rows further down
        'clips/0.wav,"hello,a,train\nclips/1.wav,x,b,train\nclips/2.wav,world",a,train\nclips/1.wav,ok,b,train\n',
        # a quote that is never closed: it runs to the end of the file
        'clips/0.wav,"hello,a,train\nclips/1.wav,x,b,train\nclips/2.wav,y,a,train\nclips/1.wav,ok,b,train\n',
    ],
)
def test_an_open_quote_that_swallows_rows_is_a_bad_row_at_the_line_it_opened(tmp_path, body):
    path = _write(tmp_path / "m.csv", _HEADER + body)
    with pytest.raises(
        ManifestError, match=r"quoted field opened on line 2 .*line 3, which reads as a complete row"
    ) as err:
        load_manifest(path)
    _assert_names(err, "m.csv", 2)
    # Skipping leaves out the line that opened the quote; the lines it swallowed are read as rows.
    data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True, line_column="line")
    assert [line for line, _ in skipped] == [2]
    assert data["train"]["line"] == [3, 4, 5]


def test_a_quoted_line_break_that_holds_no_row_still_loads(tmp_path):
    # commas on the second line make it read as a row, but the opening line is not one
    path = _write(tmp_path / "m.csv", _HEADER + 'clips/0.wav,"first, line\nsecond, line",a,train\n')
    assert load_manifest(path)["train"]["text"] == ["first, line\nsecond, line"]
    # Nor is the line that closes the quote a row taken in, though its opening line reads as one.
    text = "Well, I said, so\nno, really"
    path = _write(tmp_path / "m2.csv", _HEADER + f'clips/0.wav,"{text}",a,train\n')
    assert load_manifest(path)["train"]["text"] == [text]


@pytest.mark.parametrize("extension", [".csv", ".tsv"])
def test_a_field_over_the_csv_field_limit_is_a_bad_row(tmp_path, extension):
    delimiter = "," if extension == ".csv" else "\t"
    rows = [["clips/0.wav", "t", "a"], ["clips/1.wav", "x" * 200_000, "a"], ["clips/2.wav", "t", "b"]]
    path = _write_csv(tmp_path / f"m{extension}", ["audio", "text", "label"], rows, delimiter=delimiter)
    with pytest.raises(ManifestError, match=r"field longer than 131072 characters") as err:
        load_manifest(path)
    _assert_names(err, f"m{extension}", 3)
    data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True)
    assert len(data) == 2 and [line for line, _ in skipped] == [3]


def test_an_open_quote_past_the_field_limit_is_a_bad_row_at_the_line_it_opened(tmp_path):
    rows = "".join(f"clips/{i % 3}.wav,{'x' * 1000},a,train\n" for i in range(200))
    path = _write(tmp_path / "m.csv", _HEADER + 'clips/0.wav,"open,a,train\n' + rows)
    with pytest.raises(ManifestError, match=r"longer than 131072 characters.*quote") as err:
        load_manifest(path)
    _assert_names(err, "m.csv", 2)
    data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True)
    assert len(data["train"]) == 200 and [line for line, _ in skipped] == [2]


def test_an_empty_column_name_in_the_header_is_an_error(tmp_path):
    path = _write(tmp_path / "m.csv", "audio,text,label,\nclips/0.wav,t,a,\n")
    with pytest.raises(ManifestError, match=r"m\.csv:1: column 4 of the header has no name"):
        load_manifest(path)


# -- labels ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "values, odd_line, odd_value, usual_value",
    [
        (["happy", "Happy", "happy", "sad", "HAPPY"], 3, "Happy", "happy"),  # case
        (["1", "01", "1", "0"], 3, "01", "1"),  # equal as integers
        (["happy", "sad", "happy\u200b", "happy"], 4, "happy\u200b", "happy"),  # a zero-width space
        (["ｈａｐｐｙ", "happy", "happy"], 2, "ｈａｐｐｙ", "happy"),  # full-width letters (NFKC)
        (["Sad", "sad", "x"], 3, "sad", "Sad"),  # a tie: the file's first spelling is the expected one
    ],
)
def test_inferred_label_spellings_of_one_class_are_an_error_naming_both(
    tmp_path, values, odd_line, odd_value, usual_value
):
    rows = [[f"clips/{index % 3}.wav", "t", value] for index, value in enumerate(values)]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], rows)
    for on_bad_row in ("raise", "skip"):  # only odd relative to the other rows: never skipped
        with pytest.raises(ManifestError) as err:
            load_manifest(path, on_bad_row=on_bad_row)
        _assert_names(err, "m.csv", odd_line)
        assert f"label {odd_value!r}" in str(err.value) and f"{usual_value!r}" in str(err.value)
        assert "labels=[" in str(err.value)
    assert load_manifest(path, labels=list(dict.fromkeys(values))).features["label"].names == list(
        dict.fromkeys(values)
    )


def test_labels_given_as_one_string_are_refused(tmp_path):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], [["clips/0.wav", "t", "ab"]])
    with pytest.raises(TypeError, match=r"labels= must be a sequence of class names.*'ab'"):
        load_manifest(path, labels="ab")


# -- JSON lines --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad_line, message",
    [
        ('{"audio": "clips/0.wav", "text": "t", "label": "a", "label": "b"}', "duplicate key 'label'"),
        ('{"audio": "clips/0.wav", "text": NaN, "label": "a"}', "NaN is not a JSON value"),
        ('{"audio": "clips/0.wav", "text": "t", "label": -Infinity}', "-Infinity is not a JSON value"),
        ('{"audio": "clips/0.wav", "text": ["hello", "world"], "label": "a"}', "'text' holds a JSON list"),
        ('{"audio": "clips/0.wav", "text": "t", "label": ["a", "b"]}', "'label' holds a JSON list"),
        ('{"audio": {"path": "clips/0.wav"}, "text": "t", "label": "a"}', "'audio' holds a JSON object"),
        ('{"audio": "clips/0.wav", "text": "t", "label": "a", "id": [1]}', "'id' holds a JSON list"),
        ('{"audio": "clips/0.wav", "text": "t", "label": "a", "split": {}}', "'split' holds a JSON object"),
    ],
)
def test_jsonl_values_that_are_not_one_string_are_bad_rows(tmp_path, bad_line, message):
    good = {"audio": "clips/0.wav", "text": "t", "label": "a", "split": "train", "notes": ["kept", "as JSON"]}
    good = json.dumps(good)
    path = _write(tmp_path / "m.jsonl", f"{good}\n\n{good}\n{bad_line}\n{good}\n")
    with pytest.raises(ManifestError, match=message) as err:
        load_manifest(path)
    _assert_names(err, "m.jsonl", 4)
    data = load_manifest(path, on_bad_row="skip")["train"]
    assert len(data) == 3 and data["notes"] == ['["kept", "as JSON"]'] * 3  # other columns may hold JSON


def test_an_empty_jsonl_file_is_an_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match=r"m\.jsonl: empty manifest"):
        load_manifest(_write(tmp_path / "m.jsonl", "\n \n"))


def test_a_pretty_printed_json_array_names_its_first_line(tmp_path):
    rows = [{"audio": "clips/0.wav", "text": "t", "label": "a"}] * 2
    path = _write(tmp_path / "m.json", json.dumps(rows, indent=2))
    for on_bad_row in ("raise", "skip"):
        with pytest.raises(ManifestError, match=r"m\.json:1: .*a JSON array\? write one object per line"):
            load_manifest(path, on_bad_row=on_bad_row)


# -- splits, columns, files --------------------------------------------------------------------------
def test_a_split_name_outside_train_validation_test_is_a_bad_row(tmp_path):
    rows = [
        ["clips/0.wav", "t", "a", "train"],
        ["clips/1.wav", "t", "b", "dev"],
        ["clips/2.wav", "t", "a", "trian"],
        ["clips/0.wav", "t", "b", "test"],
    ]
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label", "split"], rows)
    expected = (
        r"split 'trian' is not a split name; expected train, validation .* or test \(closest: 'train'\)"
    )
    with pytest.raises(ManifestError, match=expected) as err:
        load_manifest(path)
    _assert_names(err, "m.csv", 4)
    with pytest.raises(ManifestError, match=expected):  # it may be a test row: it is checked
        load_manifest(path, splits=("test",))
    data, skipped = load_manifest(path, on_bad_row="skip", return_skipped=True)
    assert list(data) == ["train", "validation", "test"] and [line for line, _ in skipped] == [4]


@pytest.mark.parametrize("option", ["id_column", "split_column"])
def test_a_named_id_or_split_column_that_is_absent_is_an_error(tmp_path, option):
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], [["clips/0.wav", "t", "a"]])
    with pytest.raises(
        ManifestError,
        match=rf"m\.csv:1: missing column\(s\) \['utt'\] \(named by {option}\); found columns \['audio'",
    ):
        load_manifest(path, **{option: "utt"})
    assert len(load_manifest(path)) == 1  # the default id and split columns are optional


@pytest.mark.parametrize("extension", [".csv", ".jsonl"])
def test_a_byte_that_is_not_utf8_is_named_by_its_line(tmp_path, extension):
    good = (
        "clips/0.wav,t,a\n"
        if extension == ".csv"
        else '{"audio": "clips/0.wav", "text": "t", "label": "a"}\n'
    )
    head = "audio,text,label\n" if extension == ".csv" else ""
    path = tmp_path / f"m{extension}"
    path.write_bytes((head + good * 3000).encode() + good.replace("t", "caf\xe9", 1).encode("latin-1"))
    with pytest.raises(ManifestError, match=r"not UTF-8 text: byte 0xe9") as err:
        load_manifest(path)
    _assert_names(err, f"m{extension}", len(head.splitlines()) + 3001)


def test_a_directory_is_named_as_one(tmp_path):
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(IsADirectoryError, match=r"manifest .*folder\.csv is a directory"):
        load_manifest(tmp_path / "folder.csv")
    (tmp_path / "clips" / "sub.wav").mkdir()
    path = _write_csv(tmp_path / "m.csv", ["audio", "text", "label"], [["clips/sub.wav", "t", "a"]])
    with pytest.raises(ManifestError, match=r"m\.csv:2: audio path is a directory: .*sub\.wav"):
        load_manifest(path)


def test_a_misspelt_keyword_suggests_the_option(tmp_path):
    with pytest.raises(
        TypeError, match=r"unexpected keyword argument 'audio_colum'; did you mean 'audio_column'"
    ):
        load_manifest(tmp_path / "m.csv", audio_colum="wav")
