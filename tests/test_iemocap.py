"""IEMOCAP loader: release-format quirks, the 4-class map, both fold protocols, errors."""

from __future__ import annotations

import re
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf
from data_fixtures import SPEAKER_LABELS, dialog_names, write_iemocap_fixture

from turbo_hf import DataCollatorForAudioText
from turbo_hf.data.iemocap import (
    IEMOCAP_NUM_FOLDS,
    IEMOCAP_SPEAKERS,
    TRANSCRIPT_NORMALIZATION,
    IemocapFormatError,
    load_iemocap,
    load_iemocap_utterances,
    normalize_transcript,
    read_emo_evaluation,
    read_transcriptions,
    speaker_of,
    transcripts_seen_in,
)
from turbo_hf.experiment import iemocap_split_report
from turbo_hf.metrics import unweighted_accuracy, weighted_accuracy
from turbo_hf.testing.synthetic import write_iemocap_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("IEMOCAP_full_release")
    return root, write_iemocap_fixture(root)


def test_reads_the_four_classes_with_happy_and_excited_merged(release):
    root, expected = release
    utterances = load_iemocap_utterances(root)
    names = utterances.features["label"].names
    assert names == ["neutral", "happy", "sad", "angry"]
    found = Counter(names[label] for label in utterances["label"])
    assert found == expected["classes"]
    assert set(utterances["emotion"]) == {"neu", "hap", "exc", "sad", "ang"}


def test_columns_and_values_of_one_utterance(release):
    root, expected = release
    utterances = load_iemocap_utterances(root)
    row = utterances[utterances["id"].index("Ses03M_impro05a_F001")]
    record = next(r for r in expected["dialogs"]["Ses03M_impro05a"] if r["id"] == "Ses03M_impro05a_F001")
    assert row["speaker"] == "Ses03_F" and row["gender"] == "F" and row["session"] == 3
    assert row["dialog"] == "Ses03M_impro05a" and row["method"] == "impro"
    assert row["text"] == record["text"]
    assert row["start"] == pytest.approx(record["start"], abs=1e-4)
    assert row["duration"] == pytest.approx(record["end"] - record["start"], abs=1e-3)
    assert row["audio"].endswith("Session3/sentences/wav/Ses03M_impro05a/Ses03M_impro05a_F001.wav")
    assert utterances.features["label"].int2str(row["label"]) == "happy"


def test_speaker_is_the_letter_of_the_last_token_not_the_lead():
    assert speaker_of("Ses01F_impro01_M000") == (1, "M", "Ses01_M")
    assert speaker_of("Ses05M_script01_1b_F012") == (5, "F", "Ses05_F")


def test_per_speaker_counts_and_scripted_dialog_with_suffix(release):
    root, expected = release
    utterances = load_iemocap_utterances(root)
    assert Counter(utterances["speaker"]) == expected["speakers"]
    scripted = [d for d, m in zip(utterances["dialog"], utterances["method"]) if m == "script"]
    assert "Ses05M_script01_1b" in scripted and "Ses03F_script02_2" in scripted


def test_transcript_lines_that_are_not_utterances_are_ignored(release):
    root, _ = release
    dialog = dialog_names(1)[0]
    transcripts = read_transcriptions(root / "Session1" / "dialog" / "transcriptions" / f"{dialog}.txt")
    assert len(transcripts) == 2 * len(SPEAKER_LABELS)
    assert not any("XX" in key for key in transcripts)
    assert all(not text.endswith("\r") for text in transcripts.values())
    raw = (root / "Session1" / "dialog" / "transcriptions" / f"{dialog}.txt").read_bytes()
    assert b"\r\n" in raw  # the fixture really has the release's CRLF endings


def test_tag_only_transcripts_are_kept_verbatim(release):
    root, _ = release
    utterances = load_iemocap_utterances(root)
    assert utterances[utterances["id"].index(f"{dialog_names(2)[0]}_M003")]["text"] == "[LAUGHTER]"


def test_label_file_blocks_list_f_before_m_and_keep_only_the_first_line(release):
    root, _ = release
    dialog = dialog_names(4)[1]
    blocks = read_emo_evaluation(root / "Session4" / "dialog" / "EmoEvaluation" / f"{dialog}.txt")
    assert len(blocks) == 2 * len(SPEAKER_LABELS)
    genders = [block["id"].rsplit("_", 1)[1][0] for block in blocks]
    assert genders == sorted(genders)  # all F, then all M: not time order
    assert Counter(block["emotion"] for block in blocks) == Counter(SPEAKER_LABELS * 2)


def test_other_label_maps_by_argument(release):
    root, _ = release
    utterances = load_iemocap_utterances(root, classes=["neu", "ang", "fru"])
    assert utterances.features["label"].names == ["neu", "ang", "fru"]
    per_label = 5 * 2 * 2  # sessions x dialogs x speakers
    assert Counter(utterances["emotion"]) == {
        code: per_label * SPEAKER_LABELS.count(code) for code in ("neu", "ang", "fru")
    }
    with_xxx = load_iemocap_utterances(root, classes={"neu": "calm", "xxx": "unsure", "oth": "unsure"})
    assert with_xxx.features["label"].names == ["calm", "unsure"]
    assert len(with_xxx) == 20 * sum(SPEAKER_LABELS.count(code) for code in ("neu", "xxx", "oth"))


@pytest.mark.parametrize("fold", range(IEMOCAP_NUM_FOLDS["speaker"]))
def test_speaker_folds_test_one_speaker_and_validate_on_the_other_of_its_session(release, fold):
    root, expected = release
    splits = load_iemocap(root, protocol="speaker", fold=fold)
    test_speaker = IEMOCAP_SPEAKERS[fold]
    assert set(splits["test"]["speaker"]) == {test_speaker}
    (validation_speaker,) = set(splits["validation"]["speaker"])
    assert validation_speaker != test_speaker and validation_speaker[:5] == test_speaker[:5]
    assert len(set(splits["train"]["speaker"])) == 8
    assert not {test_speaker, validation_speaker} & set(splits["train"]["speaker"])
    assert sum(len(split) for split in splits.values()) == sum(expected["classes"].values())


@pytest.mark.parametrize("fold", range(IEMOCAP_NUM_FOLDS["session"]))
def test_session_folds_leave_one_session_out_with_a_stratified_validation(release, fold):
    root, expected = release
    splits = load_iemocap(root, protocol="session", fold=fold, validation_fraction=0.25, seed=1)
    assert set(splits["test"]["session"]) == {fold + 1}
    assert fold + 1 not in set(splits["train"]["session"]) | set(splits["validation"]["session"])
    ids = {name: set(split["id"]) for name, split in splits.items()}
    assert not ids["train"] & ids["validation"] and not ids["train"] & ids["test"]
    assert not ids["validation"] & ids["test"]
    assert not set(splits["test"]["speaker"]) & set(splits["train"]["speaker"])
    assert sum(len(v) for v in ids.values()) == sum(expected["classes"].values())
    # stratified: each class is held out in proportion
    train_and_validation = Counter(splits["train"]["label"]) + Counter(splits["validation"]["label"])
    for label, count in Counter(splits["validation"]["label"]).items():
        assert count == round(0.25 * train_and_validation[label])


def test_session_validation_is_seeded(release):
    root, _ = release
    first = load_iemocap(root, protocol="session", fold=2, seed=3)["validation"]["id"]
    again = load_iemocap(root, protocol="session", fold=2, seed=3)["validation"]["id"]
    other = load_iemocap(root, protocol="session", fold=2, seed=4)["validation"]["id"]
    assert first == again and first != other


def test_bad_fold_and_protocol_are_rejected(release):
    root, _ = release
    with pytest.raises(ValueError, match="0..4"):
        load_iemocap(root, protocol="session", fold=5)
    with pytest.raises(ValueError, match="protocol"):
        load_iemocap(root, protocol="dialog")


def test_a_folder_that_is_not_a_release_gets_an_error_saying_what_was_expected(tmp_path):
    (tmp_path / "wavs").mkdir()
    with pytest.raises(
        IemocapFormatError, match=r"Session1 \.\.\. Session5.*EmoEvaluation.*found \['wavs'\]"
    ):
        load_iemocap(tmp_path)


def test_the_parent_of_the_release_folder_is_accepted(release):
    root, _ = release
    assert len(load_iemocap_utterances(root.parent / root.name)) == len(load_iemocap_utterances(root))


def test_missing_wav_is_an_error_naming_it_or_skipped_and_counted(tmp_path, caplog):
    root = tmp_path / "IEMOCAP_full_release"
    expected = write_iemocap_fixture(root)
    dialog = dialog_names(2)[1]
    missing = root / "Session2" / "sentences" / "wav" / dialog / f"{dialog}_M004.wav"
    missing.unlink()
    with pytest.raises(IemocapFormatError, match=f"{dialog}_M004.*no audio file"):
        load_iemocap_utterances(root)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 1
    assert "skipped 1 labelled utterance" in caplog.text


def test_unlabelled_utterance_without_wav_is_not_an_error(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    (root / "Session1" / "sentences" / "wav" / dialog / f"{dialog}_F005.wav").unlink()  # fru: not kept
    assert len(load_iemocap_utterances(root)) > 0


def test_a_fold_of_a_session_left_out_by_sessions_fails_clearly(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    shutil.rmtree(root / "Session4")
    with pytest.raises(IemocapFormatError, match=r"Ses04_F.*no utterance.*sessions \[1, 2, 3, 5\]"):
        load_iemocap(root, protocol="speaker", fold=6, sessions=(1, 2, 3, 5))


def test_the_collator_reads_a_loaded_split(release):
    from conftest import TurboModelTester

    root, _ = release
    tester = TurboModelTester(num_labels=4)
    test_split = load_iemocap(root, protocol="speaker", fold=0)["test"]
    batch = DataCollatorForAudioText(tester.processor)([test_split[i] for i in range(3)])
    assert batch["input_values"].shape[0] == 3
    assert batch["labels"].tolist() == test_split["label"][:3]
    assert np.isfinite(batch["input_values"].numpy()).all()


def _break_wav(path, content):
    if content == "zero frames":
        sf.write(path, np.zeros(0, dtype=np.float32), 16000)  # a valid header over no samples
    else:
        path.write_bytes(content)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"RIFF this is not a wav file" * 4, "unreadable audio header"),
        (b"", "unreadable audio header"),
        ("zero frames", r"is empty \(0 frames\)"),
    ],
    ids=["garbage", "empty-file", "zero-frames"],
)
def test_a_wav_that_is_not_audio_is_an_error_naming_it_at_load_time(tmp_path, content, message):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(3)[0]
    broken = root / "Session3" / "sentences" / "wav" / dialog / f"{dialog}_F002.wav"  # exc: kept
    _break_wav(broken, content)
    with pytest.raises(IemocapFormatError, match=message) as err:
        load_iemocap(root)
    assert str(broken) in str(err.value) and "on_missing='skip'" in str(err.value)


def test_missing_and_unreadable_wavs_are_skipped_counted_by_reason_and_logged(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    dialog = dialog_names(2)[0]
    wav_dir = root / "Session2" / "sentences" / "wav" / dialog
    (wav_dir / f"{dialog}_M000.wav").unlink()  # neu
    _break_wav(wav_dir / f"{dialog}_F001.wav", b"garbage")  # hap
    _break_wav(wav_dir / f"{dialog}_M003.wav", "zero frames")  # sad
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 3
    assert not {f"{dialog}_M000", f"{dialog}_F001", f"{dialog}_M003"} & set(utterances["id"])
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "skipped 3 labelled utterance(s)" in warning
    assert "2 with a wav that is not readable audio" in warning and "1 without a wav file" in warning


def test_duration_is_read_from_the_wav_header_not_the_label_timestamps(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[1]
    wav = root / "Session1" / "sentences" / "wav" / dialog / f"{dialog}_F004.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)  # 0.5 s; the label file says 0.14 s
    utterances = load_iemocap_utterances(root)
    row = utterances[utterances["id"].index(f"{dialog}_F004")]
    assert row["end"] - row["start"] == pytest.approx(0.14, abs=1e-3)
    assert row["duration"] == pytest.approx(0.5)


# Every session's actors read the same script; improvised lines are their own.
SCRIPT = ("I can't believe you did that.", "Where were you last night?", "Fine. Go, then!", "[LAUGHTER]")
CODES = ("neu", "hap", "sad", "ang")


def _release_with_a_shared_script(root) -> None:
    rng = np.random.default_rng(0)
    dialogs = {}
    for session in range(1, 6):
        for dialog, lines in (
            (
                f"Ses{session:02d}F_impro01",
                [f"improvised line {index} of session {session}" for index in range(4)],
            ),
            # Session 1 writes the script in lower case without punctuation: still the same lines.
            (
                f"Ses{session:02d}M_script01_1",
                [line.lower().strip(".!?") if session == 1 else line for line in SCRIPT],
            ),
        ):
            dialogs[dialog] = [
                {
                    "id": f"{dialog}_{gender}{index:03d}",
                    "emotion": CODES[index],
                    "start": 2.0 * index + (gender == "M"),
                    "end": 2.0 * index + (gender == "M") + 0.5,
                    "text": text,
                    "waveform": 0.1 * rng.standard_normal(1600).astype(np.float32),
                }
                for index, text in enumerate(lines)
                for gender in "FM"
            ]
    write_iemocap_release(root, dialogs)


@pytest.fixture(scope="module")
def scripted_release(tmp_path_factory):
    root = tmp_path_factory.mktemp("scripted_release")
    _release_with_a_shared_script(root)
    return root


def test_method_selects_the_improvised_or_the_scripted_dialogs(scripted_release):
    every = load_iemocap(scripted_release, protocol="session", fold=0)
    for method, value in (("improvised", "impro"), ("scripted", "script")):
        splits = load_iemocap(scripted_release, protocol="session", fold=0, method=method)
        for split in splits.values():
            assert set(split["method"]) == {value}
        # The test session's utterances of that method; validation is drawn from the selection.
        assert sorted(splits["test"]["id"]) == sorted(
            row["id"] for row in every["test"] if row["method"] == value
        )
        kept = sorted([*splits["train"]["id"], *splits["validation"]["id"]])
        assert kept == sorted(
            row["id"] for name in ("train", "validation") for row in every[name] if row["method"] == value
        )
    with pytest.raises(ValueError, match=r"method must be one of \['all', 'improvised', 'scripted'\]"):
        load_iemocap(scripted_release, method="impro")


def test_normalised_transcripts_match_across_case_punctuation_and_tags():
    assert normalize_transcript("Fine. Go, then!") == normalize_transcript("fine go then") == "fine go then"
    assert normalize_transcript("Oh, [LAUGHTER] I can't!") == "oh i can't"
    seen = transcripts_seen_in(["Fine, go then", "[LAUGHTER]", "new words"], ["fine go then.", "[LAUGHTER]"])
    assert seen.tolist() == [True, False, False]  # a tag alone is no scripted line


def test_the_split_report_breaks_scores_down_by_method_and_counts_script_lines_seen_in_training(
    scripted_release,
):
    splits = load_iemocap(scripted_release, protocol="session", fold=0)
    test = splits["test"]
    labels = np.asarray(test["label"])
    predicted = np.where(np.asarray(test["method"]) == "impro", labels, 0)  # improvised all right
    report = iemocap_split_report(splits["train"])(test, labels, predicted)
    by_method = report["by_method"]
    assert by_method["improvised"] == {"num_examples": 8, "wa": 1.0, "ua": 1.0, "transcripts_in_train": 0}
    scripted = np.asarray(test["method"]) == "script"
    assert by_method["scripted"]["wa"] == weighted_accuracy(labels[scripted], predicted[scripted]) == 0.25
    assert by_method["scripted"]["ua"] == unweighted_accuracy(labels[scripted], predicted[scripted])
    # Session 1's three spoken script lines, by both actors, are read in sessions 2-5 too; the tag is not.
    assert by_method["scripted"]["transcripts_in_train"] == 6
    assert report["transcripts_in_train"]["count"] == 6
    assert report["transcripts_in_train"]["num_examples"] == len(test) == 16
    assert report["transcripts_in_train"]["normalization"] == TRANSCRIPT_NORMALIZATION


def _garble_header(root, session: int, utterance: str) -> tuple:
    """Break the header line of `utterance` in its label file; returns (file, line number, line)."""
    dialog = utterance.rsplit("_", 1)[0]
    label_file = root / f"Session{session}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"
    lines = label_file.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("[") and utterance in line)
    lines[index] = lines[index].replace(
        "]", "", 1
    )  # "[6.2901 - 8.2357 Ses01F_... hap [..." : no closing bracket
    label_file.write_text("\n".join(lines), encoding="utf-8")
    return label_file, index + 1, lines[index]


def test_a_garbled_utterance_header_is_an_error_naming_file_line_and_text(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    utterance = f"{dialog_names(1)[0]}_F001"  # hap: kept in the 4-class set
    label_file, number, line = _garble_header(root, 1, utterance)
    expected = rf"{re.escape(str(label_file))}, line {number}: an utterance header that does not parse: {re.escape(repr(line))}"
    with pytest.raises(IemocapFormatError, match=expected):
        read_emo_evaluation(label_file)
    with pytest.raises(IemocapFormatError, match=expected + r".*on_missing='skip'"):
        load_iemocap_utterances(root)


def test_a_garbled_utterance_header_is_skipped_counted_and_logged_under_skip(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    utterance = f"{dialog_names(1)[0]}_F001"
    _garble_header(root, 1, utterance)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 1 and utterance not in utterances["id"]
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert "1 with a header line that does not parse" in warning and utterance in warning


def _label_file(root, dialog):
    return root / f"Session{int(dialog[3:5])}" / "dialog" / "EmoEvaluation" / f"{dialog}.txt"


def _transcript_file(root, dialog):
    return root / f"Session{int(dialog[3:5])}" / "dialog" / "transcriptions" / f"{dialog}.txt"


def _line_number(path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def _append_block(label_file, utterance_id: str, emotion: str, start: float = 50.0) -> int:
    """Append one utterance block to a label file; returns the header's line number."""
    lines = label_file.read_text(encoding="utf-8").splitlines()
    lines += [f"[{start:.4f} - {start + 0.5:.4f}]\t{utterance_id}\t{emotion}\t[2.5000, 3.0000, 2.5000]", ""]
    label_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 1


def _relabel(label_file, utterance_id: str, emotion: str) -> int:
    """Give `utterance_id`'s header another emotion code; returns its line number."""
    lines = label_file.read_text(encoding="utf-8").split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("[") and f"\t{utterance_id}\t" in line)
    start, utterance, _, rest = lines[index].split("\t")
    lines[index] = "\t".join([start, utterance, emotion, rest])
    label_file.write_text("\n".join(lines), encoding="utf-8")
    return index + 1


def _warning(caplog) -> str:
    (warning,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    return warning


def test_an_utterance_labelled_twice_is_an_error_naming_both_lines_or_a_counted_skip(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    label_file = _label_file(root, dialog)
    first = _line_number(label_file, f"\t{dialog}_F000\t")
    second = _append_block(label_file, f"{dialog}_F000", "ang")
    where = re.escape(str(label_file))
    with pytest.raises(
        IemocapFormatError, match=rf"{where}, line {second}: .*{dialog}_F000.*{where}, line {first}"
    ):
        load_iemocap_utterances(root)
    with pytest.raises(IemocapFormatError, match=rf"line {second}: .*line {first}"):
        read_emo_evaluation(label_file)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == len(set(utterances["id"])) == sum(expected["classes"].values())
    assert "1 labelled more than once" in _warning(caplog)


def test_a_copied_dialog_is_an_error_naming_both_label_files(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog, copy = dialog_names(1)[0], "Ses01F_impro09"
    for source, target in (
        (_label_file(root, dialog), _label_file(root, copy)),
        (_transcript_file(root, dialog), _transcript_file(root, copy)),
    ):
        shutil.copy(source, target)
    wavs = root / "Session1" / "sentences" / "wav"
    shutil.copytree(wavs / dialog, wavs / copy)
    with pytest.raises(IemocapFormatError, match="labelled more than once") as err:
        load_iemocap_utterances(root)
    assert str(_label_file(root, dialog)) in str(err.value) and str(_label_file(root, copy)) in str(err.value)


def test_an_utterance_of_another_session_in_a_label_file_is_an_error(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    stray = "Ses02F_impro01_F050"  # labelled nowhere else, with a wav where Session1 would look
    number = _append_block(_label_file(root, dialog), stray, "neu")
    sf.write(root / "Session1" / "sentences" / "wav" / dialog / f"{stray}.wav", np.zeros(1600), 16000)
    with pytest.raises(IemocapFormatError, match=rf"line {number}: utterance {stray} .*session 2.*Session1"):
        load_iemocap_utterances(root)


def test_a_missing_session_is_an_error_listing_it_unless_sessions_restricts_the_load(tmp_path):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    shutil.rmtree(root / "Session3")
    shutil.rmtree(root / "Session5")
    with pytest.raises(
        IemocapFormatError, match=r"Session3, Session5.*sessions=.*--sessions 1 2 4 in the recipes"
    ):
        load_iemocap(root, fold=0)
    splits = load_iemocap(root, fold=0, sessions=(1, 2, 4))
    assert set(splits["train"]["session"]) == {2, 4}
    per_session = sum(expected["classes"].values()) // 5
    assert sum(len(split) for split in splits.values()) == 3 * per_session
    assert set(load_iemocap_utterances(root, sessions=[1])["session"]) == {1}
    for bad in ((), (0,), (1, 6), (1, 1), ("1",), (True,)):
        with pytest.raises(ValueError, match="sessions"):
            load_iemocap_utterances(root, sessions=bad)


def test_a_missing_transcription_file_is_named_as_missing(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    transcript_file = _transcript_file(root, dialog_names(1)[0])
    transcript_file.unlink()
    with pytest.raises(
        IemocapFormatError, match=rf"transcription file {re.escape(str(transcript_file))} is missing"
    ):
        load_iemocap_utterances(root)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 14
    assert "14 without a transcription file" in _warning(caplog)


def test_a_garbled_transcript_line_is_quoted_with_its_line_number(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    transcript_file = _transcript_file(root, dialog)
    lines = transcript_file.read_bytes().decode("utf-8").split("\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{dialog}_F001 "))
    lines[index] = lines[index].replace("]:", "]", 1)
    transcript_file.write_text("\r\n".join(lines), encoding="utf-8", newline="")
    expected_message = (
        rf"{re.escape(str(transcript_file))}, line {index + 1}: a transcript line that does not parse: "
        + re.escape(repr(lines[index]))
    )
    with pytest.raises(IemocapFormatError, match=expected_message):
        read_transcriptions(transcript_file)
    with pytest.raises(IemocapFormatError, match=expected_message):
        load_iemocap_utterances(root)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 1
    assert "1 with a transcript line that does not parse" in _warning(caplog)


def test_a_second_transcript_line_with_other_text_is_an_error_naming_both_lines(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    transcript_file = _transcript_file(root, dialog)
    text = transcript_file.read_bytes().decode("utf-8")
    first = _line_number(transcript_file, f"{dialog}_F002 ")
    transcript_file.write_text(
        text + f"{dialog}_F002 [010.0000-011.0000]: Other words.\r\n", encoding="utf-8", newline=""
    )
    second = len(text.split("\r\n"))
    with pytest.raises(IemocapFormatError, match=rf"line {second}: .*{dialog}_F002.*line {first}"):
        read_transcriptions(transcript_file)
    with pytest.raises(IemocapFormatError, match=rf"line {second}: .*{dialog}_F002.*line {first}"):
        load_iemocap_utterances(root)


def test_an_empty_label_file_is_an_error_naming_it(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    label_file = _label_file(root, dialog_names(2)[1])
    label_file.write_bytes(b"")
    with pytest.raises(IemocapFormatError, match=rf"{re.escape(str(label_file))}.*no utterance block"):
        load_iemocap_utterances(root)


def test_an_emotion_code_outside_the_release_is_an_error_or_a_counted_skip(tmp_path, caplog):
    root = tmp_path / "release"
    expected = write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    label_file = _label_file(root, dialog)
    number = _relabel(label_file, f"{dialog}_F000", "Neu")
    _relabel(label_file, f"{dialog}_F001", "happy")
    with pytest.raises(IemocapFormatError, match=rf"line {number}: .*emotion code 'Neu'.*'neu'"):
        load_iemocap_utterances(root)
    with caplog.at_level("WARNING"):
        utterances = load_iemocap_utterances(root, on_missing="skip")
    assert len(utterances) == sum(expected["classes"].values()) - 2
    assert "2 with an emotion code the release does not use" in _warning(caplog)


@pytest.mark.parametrize(
    "classes, message",
    [
        (["neu", "frus"], r"'frus'.*did you mean 'fru'"),
        ({"neu": "neutral", "Ang": "angry"}, r"'Ang'.*did you mean 'ang'"),
        (["neu", "dis"], r"class 'dis' has no utterance"),
    ],
    ids=["misspelt", "case", "absent"],
)
def test_classes_naming_a_code_that_never_occurs_are_refused(release, classes, message):
    root, _ = release
    with pytest.raises(ValueError, match=message):
        load_iemocap_utterances(root, classes=classes)


def test_an_utterance_that_ends_before_it_starts_is_an_error(tmp_path):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    label_file = _label_file(root, dialog)
    number = _append_block(label_file, f"{dialog}_F050", "neu", start=9.0)
    lines = label_file.read_text(encoding="utf-8").split("\n")
    lines[number - 1] = lines[number - 1].replace("[9.0000 - 9.5000]", "[9.5000 - 9.0000]")
    label_file.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(IemocapFormatError, match=rf"line {number}: .*ends .*before it starts"):
        read_emo_evaluation(label_file)


def test_a_transcript_that_is_not_utf8_is_decoded_with_a_warning_naming_file_and_line(tmp_path, caplog):
    root = tmp_path / "release"
    write_iemocap_fixture(root)
    dialog = dialog_names(1)[0]
    transcript_file = _transcript_file(root, dialog)
    number = _line_number(transcript_file, f"{dialog}_F003 ")
    raw = transcript_file.read_bytes().split(b"\r\n")
    raw[number - 1] = raw[number - 1] + b" caf\xe9"
    transcript_file.write_bytes(b"\r\n".join(raw))
    with caplog.at_level("WARNING"):
        transcripts = read_transcriptions(transcript_file)
    assert transcripts[f"{dialog}_F003"].endswith("caf\ufffd")
    assert f"{transcript_file}, line {number}: not UTF-8" in caplog.text


def test_bad_fold_arguments_are_refused_before_loading(release):
    root, _ = release
    with pytest.raises(ValueError, match="fold must be an integer"):
        load_iemocap(root, protocol="speaker", fold=True)
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\)"):
        load_iemocap(root, protocol="speaker", validation_fraction=1.5)
    with pytest.raises(TypeError, match="validation_fraction must be a number"):
        load_iemocap(root, protocol="session", validation_fraction="0.1")


def test_a_validation_fraction_too_small_for_the_rows_says_so(release):
    root, _ = release
    with pytest.raises(ValueError, match=r"session fold 0: .*validation would have 0 rows.*0\.01") as err:
        load_iemocap(root, protocol="session", fold=0, validation_fraction=0.01)
    assert "session missing" not in str(err.value)
