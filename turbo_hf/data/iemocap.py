"""IEMOCAP release -> `datasets` objects, with the 4-class label map and the paper's folds.

The release (`IEMOCAP_full_release/`, licensed, never shipped here) is read straight from its own
layout; see docs/data.md. Per session:

    SessionK/dialog/EmoEvaluation/<dialog>.txt     one block per utterance; first line
                                                   "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5, 2.5, 2.5]"
    SessionK/dialog/transcriptions/<dialog>.txt    "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."
    SessionK/sentences/wav/<dialog>/<utterance>.wav

The text files are parsed, and checked line by line, in `iemocap_files.py`. Audio is not decoded
here: the `audio` column holds paths that `DataCollatorForAudioText` reads lazily. Only each selected
wav's header is read (~0.05 ms a file from the page cache), for `duration` and so that a file that is
not audio fails at loading, not at test evaluation after training.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
from transformers.utils import logging

from ..audio import AudioDecodingError, audio_duration
from .iemocap_files import (
    IEMOCAP_EMOTION_CODES,
    IemocapFormatError,
    did_you_mean,
    parse_emo_evaluation,
    parse_transcriptions,
    read_emo_evaluation,
    read_transcriptions,
    speaker_of,
)
from .splits import check_fraction, stratified_split

logger = logging.get_logger(__name__)

IEMOCAP_SESSIONS = (1, 2, 3, 4, 5)
IEMOCAP_SPEAKERS = tuple(f"Ses{session:02d}_{gender}" for session in IEMOCAP_SESSIONS for gender in "FM")
IEMOCAP_NUM_FOLDS = {"speaker": len(IEMOCAP_SPEAKERS), "session": len(IEMOCAP_SESSIONS)}

# The standard 4-class set: excited is merged into happy (5,531 utterances in the release).
IEMOCAP_FOUR_CLASS_MAP: dict[str, str] = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
}
IEMOCAP_FOUR_CLASS_COUNTS = {"neutral": 1708, "happy": 1636, "sad": 1084, "angry": 1103}
# `load_iemocap(method=...)` -> the `method` column's value. Scripted dialogs are read from the same
# scripts in every session, so a test speaker's scripted lines occur word for word in training.
IEMOCAP_METHODS = {"improvised": "impro", "scripted": "script"}
TRANSCRIPT_NORMALIZATION = (
    "case-folded, bracketed tags such as [LAUGHTER] removed, punctuation other than apostrophes inside "
    "words dropped, whitespace collapsed; transcripts left empty never count"
)

_FEATURE_COLUMNS = {
    "id": Value("string"),
    "audio": Value("string"),
    "text": Value("string"),
    "session": Value("int32"),
    "speaker": Value("string"),
    "gender": Value("string"),
    "dialog": Value("string"),
    "method": Value("string"),
    "emotion": Value("string"),
    "start": Value("float32"),
    "end": Value("float32"),
    "duration": Value("float32"),
}


def _release_root(root: str | os.PathLike) -> Path:
    """Accept the release folder itself or the folder that holds `IEMOCAP_full_release/`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise IemocapFormatError(f"IEMOCAP root {root} is not a folder")
    if not any((root / f"Session{s}").is_dir() for s in IEMOCAP_SESSIONS):
        nested = root / "IEMOCAP_full_release"
        if nested.is_dir():
            return _release_root(nested)
        found = sorted(p.name for p in root.iterdir())[:10]
        raise IemocapFormatError(
            f"{root} is not an IEMOCAP release: expected folders Session1 ... Session5, each holding "
            "dialog/EmoEvaluation/<dialog>.txt, dialog/transcriptions/<dialog>.txt and "
            f"sentences/wav/<dialog>/<utterance>.wav; found {found}"
        )
    return root


def normalize_transcript(text: str) -> str:
    """A transcript as the verbatim-overlap count compares it (`TRANSCRIPT_NORMALIZATION`):
    "Oh, [LAUGHTER] I can't!" and "oh i can't" are the same line."""
    text = re.sub(r"\[[^\]]*\]", " ", text).casefold()
    text = re.sub(r"(?<!\w)'|'(?!\w)|[^\w\s']", " ", text)
    return " ".join(text.split())


def transcripts_seen_in(texts: Sequence[str], reference_texts: Sequence[str]) -> np.ndarray:
    """Which of `texts` occur verbatim (after `normalize_transcript`) among `reference_texts`, as a
    boolean array; a transcript that normalises to nothing (a tag, silence) never counts."""
    reference = {normalize_transcript(text) for text in reference_texts} - {""}
    return np.array([normalize_transcript(text) in reference for text in texts], dtype=bool)


def _class_map(classes: Mapping[str, str] | Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(emotion code -> class name, class names in index order); every code must be the release's."""
    if isinstance(classes, str):
        raise ValueError(
            f"classes must be a list of emotion codes or a code -> name mapping, got {classes!r}"
        )
    mapping = dict(classes) if isinstance(classes, Mapping) else {code: code for code in classes}
    if not mapping:
        raise ValueError("classes must name at least one IEMOCAP emotion code")
    for code in mapping:
        if code not in IEMOCAP_EMOTION_CODES:
            # A misspelt code would otherwise become a class that never gets a row.
            raise ValueError(
                f"classes: {code!r} is not an emotion code of the release{did_you_mean(str(code), IEMOCAP_EMOTION_CODES)}; "
                f"its codes are {list(IEMOCAP_EMOTION_CODES)}"
            )
    return mapping, list(dict.fromkeys(mapping.values()))


def _check_sessions(sessions: Sequence[int]) -> tuple[int, ...]:
    values = tuple(sessions) if not isinstance(sessions, str) else (sessions,)
    valid = all(
        not isinstance(s, bool) and isinstance(s, (int, np.integer)) and s in IEMOCAP_SESSIONS for s in values
    )
    if not values or not valid or len(set(values)) != len(values):
        raise ValueError(
            f"sessions must name distinct sessions among {list(IEMOCAP_SESSIONS)}, got {sessions!r}"
        )
    return tuple(sorted(int(s) for s in values))


def _check_fold(protocol: str, fold: int, validation_fraction: float) -> None:
    if protocol not in IEMOCAP_NUM_FOLDS:
        raise ValueError(f"protocol must be one of {sorted(IEMOCAP_NUM_FOLDS)}, got {protocol!r}")
    num_folds = IEMOCAP_NUM_FOLDS[protocol]
    # bool is an int: fold=True would quietly be fold 1.
    if isinstance(fold, bool) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < num_folds:
        raise ValueError(
            f"fold must be an integer in 0..{num_folds - 1} for the {protocol} protocol, got {fold!r}"
        )
    # Checked for both protocols: the speaker protocol does not use it, but a bad value is a mistake.
    check_fraction(validation_fraction)


class _Unusable(Exception):
    """Internal: a labelled utterance that cannot be used; `args` = (message, reason counted when skipped)."""


def _utterance_row(
    utterance: dict,
    session_dir: Path,
    label_file: Path,
    transcripts: tuple[dict[str, str], dict[str, tuple[str, str]]] | None,
    transcript_file: Path,
) -> dict:
    """One labelled utterance as the output's columns (without `label`); raises _Unusable saying why.
    `transcripts`: what `parse_transcriptions` read from `transcript_file`, None if it is missing."""
    utterance_id, dialog = utterance["id"], label_file.stem
    wav = session_dir / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
    where = f"utterance {utterance_id} (labelled in {label_file})"
    if not wav.is_file():
        raise _Unusable(f"{where} has no audio file {wav}", "without a wav file")
    if transcripts is None:
        raise _Unusable(
            f"{where}: its transcription file {transcript_file} is missing", "without a transcription file"
        )
    transcripts, transcript_problems = transcripts
    if utterance_id in transcript_problems:
        raise _Unusable(*transcript_problems[utterance_id])
    if utterance_id not in transcripts:
        raise _Unusable(f"{where} has no line in {transcript_file}", "without a transcript line")
    try:
        # The header, not end - start: what the length-grouped sampler batches is the file.
        duration = audio_duration(wav)
    except AudioDecodingError as err:
        raise _Unusable(f"{where}: {err}", "with a wav that is not readable audio") from err
    session, gender, speaker = speaker_of(utterance_id)
    return {
        "id": utterance_id,
        "audio": str(wav.resolve()),
        "text": transcripts[utterance_id],
        "session": session,
        "speaker": speaker,
        "gender": gender,
        "dialog": dialog,
        "method": "impro" if "_impro" in dialog else "script",
        "emotion": utterance["emotion"],
        "start": utterance["start"],
        "end": utterance["end"],
        "duration": duration,
    }


def load_iemocap_utterances(
    root: str | os.PathLike,
    classes: Mapping[str, str] | Sequence[str] = IEMOCAP_FOUR_CLASS_MAP,
    on_missing: str = "error",
    sessions: Sequence[int] = IEMOCAP_SESSIONS,
) -> Dataset:
    """Every labelled utterance of the release whose emotion is in `classes`, as one Dataset.

    Args:
        root: the `IEMOCAP_full_release` folder (or its parent).
        classes: emotion code -> class name (default: the 4-class map, hap + exc -> happy), or a
            list of codes that each become a class (e.g. `["neu", "ang", "sad", "hap", "fru"]`).
            Every code must be one of `IEMOCAP_EMOTION_CODES`, and every class must get utterances.
        on_missing: "error" (default) raises on a labelled utterance without a wav file,
            transcription file or transcript line, whose wav is not readable audio (not a sound
            file, empty, 0 frames), whose header line in the label file does not parse, has a code
            the release does not use or ends before it starts, that a label file of another session
            holds, or that is labelled a second time; and on a transcript line that does not parse
            or repeats an id with other text. "skip" leaves such utterances out (the first label of
            one labelled twice is kept), counts them by reason and logs them.
        sessions: the sessions to read (default: all five, which both fold protocols need); a
            session folder missing from the release is an error unless left out here.
    """
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    sessions = _check_sessions(sessions)
    release = _release_root(root)
    mapping, names = _class_map(classes)
    present = [session for session in sessions if (release / f"Session{session}").is_dir()]
    if len(present) < len(sessions):
        missing = ", ".join(f"Session{session}" for session in sessions if session not in present)
        raise IemocapFormatError(
            f"{release}: no folder {missing}; the fold protocols test every speaker and session of the "
            f"release. To load fewer sessions on purpose, pass sessions={present} (--sessions "
            f"{' '.join(map(str, present))} in the recipes)"
        )
    rows: dict[str, list] = {column: [] for column in [*_FEATURE_COLUMNS, "label"]}
    skipped: list[str] = []
    skipped_reasons: Counter = Counter()
    seen: dict[str, tuple[Path, int, str]] = {}  # across files: a copied dialog repeats its ids

    def unusable(problem: str, reason: str) -> None:
        if on_missing == "error":
            raise IemocapFormatError(problem + "; pass on_missing='skip' to leave such utterances out")
        skipped.append(problem)
        skipped_reasons[reason] += 1

    for session in sessions:
        session_dir = release / f"Session{session}"
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        # Names starting with "." are macOS AppleDouble files ("._x.txt") that copies carry along.
        label_files = (
            sorted(path for path in label_dir.glob("*.txt") if not path.name.startswith("."))
            if label_dir.is_dir()
            else []
        )
        if not label_files:
            raise IemocapFormatError(
                f"{label_dir}: expected one <dialog>.txt label file per dialog, found none"
            )
        for label_file in label_files:
            utterances, problems = parse_emo_evaluation(label_file, seen, session)
            for problem in problems:
                unusable(*problem)
            transcript_file = session_dir / "dialog" / "transcriptions" / label_file.name
            transcripts = parse_transcriptions(transcript_file) if transcript_file.is_file() else None
            if transcripts is not None and transcripts[1] and on_missing == "error":
                # Raised where the line is read, like a bad header; under "skip" its utterance is
                # counted once, below, if it is one of the chosen classes.
                unusable(*next(iter(transcripts[1].values())))
            for utterance in utterances:
                if utterance["emotion"] not in mapping:
                    continue
                try:
                    values = _utterance_row(utterance, session_dir, label_file, transcripts, transcript_file)
                except _Unusable as err:
                    values, problem = None, err.args
                if values is None:
                    unusable(*problem)
                    continue
                values["label"] = names.index(mapping[utterance["emotion"]])
                for column, value in values.items():
                    rows[column].append(value)
    if skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in skipped_reasons.most_common())
        logger.warning(
            f"IEMOCAP: skipped {len(skipped)} labelled utterance(s) (on_missing='skip'): {reasons}; "
            f"first: {skipped[:3]}"
        )
    counts = Counter(rows["label"])
    empty = [
        f"class {name!r} has no utterance (codes {[code for code, value in mapping.items() if value == name]})"
        for index, name in enumerate(names)
        if not counts[index]
    ]
    if empty:
        raise IemocapFormatError(
            f"{release} (sessions {list(sessions)}): {'; '.join(empty)}; a class without rows cannot be "
            "trained or scored"
        )
    features = Features({**_FEATURE_COLUMNS, "label": ClassLabel(names=names)})
    dataset = Dataset.from_dict(rows, features=features)
    logger.info(
        f"IEMOCAP: {len(dataset)} utterances from {release}: "
        + ", ".join(f"{name} {counts[index]}" for index, name in enumerate(names))
    )
    return dataset


def iemocap_fold_indices(
    utterances: Dataset,
    protocol: str = "speaker",
    fold: int = 0,
    validation_fraction: float = 0.1,
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """Row indices of train / validation / test for one fold.

    - `speaker` (10 folds, the paper's 8/1/1): fold k tests speaker k of `IEMOCAP_SPEAKERS`
      (Ses01_F, Ses01_M, Ses02_F, ...), validates on the other speaker of that session and
      trains on the remaining eight.
    - `session` (5 folds, leave one session out): fold k tests session k + 1; validation is a
      stratified, seeded `validation_fraction` of the four training sessions.
    """
    _check_fold(protocol, fold, validation_fraction)
    if protocol == "speaker":
        speakers = np.asarray(utterances["speaker"])
        test_speaker = IEMOCAP_SPEAKERS[fold]
        validation_speaker = IEMOCAP_SPEAKERS[fold ^ 1]  # the other speaker of the same session
        splits = {
            "train": np.flatnonzero((speakers != test_speaker) & (speakers != validation_speaker)),
            "validation": np.flatnonzero(speakers == validation_speaker),
            "test": np.flatnonzero(speakers == test_speaker),
        }
        held_out = {"test": test_speaker, "validation": validation_speaker}
    else:
        sessions = np.asarray(utterances["session"])
        test_session = IEMOCAP_SESSIONS[fold]
        training = np.flatnonzero(sessions != test_session)
        labels = np.asarray(utterances["label"])[training]
        try:
            kept, held = stratified_split(
                labels, validation_fraction, seed, utterances.features["label"].names
            )
        except ValueError as err:
            raise ValueError(f"{protocol} fold {fold}: {err}") from None
        splits = {
            "train": training[kept],
            "validation": training[held],
            "test": np.flatnonzero(sessions == test_session),
        }
        held_out = {
            "test": f"Session{test_session}",
            "validation": f"{validation_fraction:.0%} of the others",
        }
    for name in ("test", "validation", "train"):
        if len(splits[name]) == 0:
            where = held_out.get(name, "the training speakers")
            raise IemocapFormatError(
                f"{protocol} fold {fold}: the {name} split ({where}) holds no utterance; the utterances "
                f"given are of sessions {sorted(set(utterances['session']))}"
            )
    return splits


def load_iemocap(
    root: str | os.PathLike,
    protocol: str = "speaker",
    fold: int = 0,
    classes: Mapping[str, str] | Sequence[str] = IEMOCAP_FOUR_CLASS_MAP,
    validation_fraction: float = 0.1,
    seed: int = 42,
    on_missing: str = "error",
    method: str = "all",
    sessions: Sequence[int] = IEMOCAP_SESSIONS,
) -> DatasetDict:
    """One fold of IEMOCAP as DatasetDict(train, validation, test).

    Columns: id, audio (path), text, label (ClassLabel), session, speaker (`Ses01_F`), gender,
    dialog, method (impro / script), emotion (the release's code), start, end (the label file's
    timestamps), duration (seconds, from the wav header). See `iemocap_fold_indices` for the two
    protocols and `load_iemocap_utterances` for `classes`, `on_missing` and `sessions`.

    `method`: "all" (default, the paper), or only the "improvised" or the "scripted" dialogs. Every
    session's actors read the same scripts, so scripted test transcripts occur word for word in
    training (see docs/data.md); "improvised" is the split without that leak.
    """
    if method != "all" and method not in IEMOCAP_METHODS:
        raise ValueError(f"method must be one of {['all', *IEMOCAP_METHODS]}, got {method!r}")
    _check_fold(protocol, fold, validation_fraction)  # before the release is read
    utterances = load_iemocap_utterances(root, classes=classes, on_missing=on_missing, sessions=sessions)
    if method != "all":
        kept = np.flatnonzero(np.asarray(utterances["method"]) == IEMOCAP_METHODS[method])
        if len(kept) == 0:
            raise IemocapFormatError(f"{root}: no {method} utterance of the chosen classes")
        utterances = utterances.select(kept)
        logger.info(f"IEMOCAP: {len(utterances)} {method} utterances kept (method={method!r})")
    splits = iemocap_fold_indices(utterances, protocol, fold, validation_fraction, seed)
    result = DatasetDict({name: utterances.select(rows) for name, rows in splits.items()})
    logger.info(
        f"IEMOCAP {protocol} fold {fold} ({method}): "
        + ", ".join(f"{name} {len(split)}" for name, split in result.items())
    )
    return result


__all__ = [
    "IEMOCAP_EMOTION_CODES",
    "IEMOCAP_METHODS",
    "TRANSCRIPT_NORMALIZATION",
    "normalize_transcript",
    "transcripts_seen_in",
    "IEMOCAP_FOUR_CLASS_COUNTS",
    "IEMOCAP_FOUR_CLASS_MAP",
    "IEMOCAP_NUM_FOLDS",
    "IEMOCAP_SESSIONS",
    "IEMOCAP_SPEAKERS",
    "IemocapFormatError",
    "iemocap_fold_indices",
    "load_iemocap",
    "load_iemocap_utterances",
    "read_emo_evaluation",
    "read_transcriptions",
    "speaker_of",
]
