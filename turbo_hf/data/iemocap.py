"""IEMOCAP release -> `datasets` objects, with the 4-class label map and the paper's folds.

The release (`IEMOCAP_full_release/`, licensed, never shipped here) is read straight from its own
layout; see docs/data.md. Per session:

    SessionK/dialog/EmoEvaluation/<dialog>.txt     one block per utterance; first line
                                                   "[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5, 2.5, 2.5]"
    SessionK/dialog/transcriptions/<dialog>.txt    "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."
    SessionK/sentences/wav/<dialog>/<utterance>.wav

Audio is not decoded here: the `audio` column holds paths that `DataCollatorForAudioText` reads
lazily. Only each selected wav's header is read (~0.05 ms a file from the page cache), for `duration`
and so that a file that is not audio fails at loading, not at test evaluation after training.
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
from .splits import stratified_split

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

# "[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]"
_LABEL_LINE = re.compile(
    r"^\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s+"
    r"(?P<id>Ses\d{2}[FM]_\S+_[FM]\d{3})\s+(?P<emotion>\w+)\s+\["
)
# "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."  (ids such as ..._FXX0 are not utterances)
_TRANSCRIPT_LINE = re.compile(
    r"^(?P<id>Ses\d{2}[FM]_\S+_[FM]\d{3})\s*\[\s*[\d.]+\s*-\s*[\d.]+\s*\]:\s?(?P<text>.*)$"
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


class IemocapFormatError(ValueError):
    """The folder is not an IEMOCAP release, or one of its files does not follow the release format."""


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


def _read_lines(path: Path) -> list[str]:
    # Transcripts use CRLF line endings and label files LF; splitlines() handles both.
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def read_emo_evaluation(path: str | os.PathLike) -> list[dict]:
    """The labelled utterances of one EmoEvaluation file: id, emotion, start, end.

    Only the first line of each block carries the consensus label; the evaluators' `C-E?:` and
    `A-E?:` lines and the `%` header are skipped. Blocks list all F utterances before the M ones.
    A line that starts with "[" but does not parse as such a first line is an IemocapFormatError
    naming the file, the line number and the line: its utterance would otherwise vanish.
    """
    utterances, garbled = _parse_emo_evaluation(Path(path))
    if garbled:
        raise IemocapFormatError(garbled[0])
    return utterances


def _parse_emo_evaluation(path: Path) -> tuple[list[dict], list[str]]:
    """(the utterances of `path`, a description of each utterance header line that does not parse)."""
    utterances, garbled = [], []
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        match = _LABEL_LINE.match(text)
        if match:
            utterances.append(
                {
                    "id": match["id"],
                    "emotion": match["emotion"],
                    "start": float(match["start"]),
                    "end": float(match["end"]),
                }
            )
        elif text.startswith("["):  # only utterance headers start with "[" in these files
            garbled.append(
                f"{path}, line {number}: an utterance header that does not parse: {text!r}; expected "
                "'[start - end]<TAB>utterance id<TAB>emotion<TAB>[v, a, d]' "
                "as in '[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5000, 2.5000, 2.5000]'"
            )
    return utterances, garbled


def read_transcriptions(path: str | os.PathLike) -> dict[str, str]:
    """Utterance id -> transcript. Lines without an utterance id (`M: Yeah.`, `..._FXX0`) are skipped."""
    transcripts = {}
    for line in _read_lines(Path(path)):
        match = _TRANSCRIPT_LINE.match(line.strip())
        if match:
            transcripts[match["id"]] = match["text"].strip()
    return transcripts


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


def speaker_of(utterance_id: str) -> tuple[int, str, str]:
    """(session, gender, speaker) of an utterance id.

    The gender is the letter of the *last* token: in `Ses01F_impro01_M000` the male actor speaks;
    `Ses01F` only names the dialog's lead.
    """
    session = int(utterance_id[3:5])
    gender = utterance_id.rsplit("_", 1)[1][0]
    return session, gender, f"Ses{session:02d}_{gender}"


def _class_map(classes: Mapping[str, str] | Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(emotion code -> class name, class names in index order)."""
    mapping = dict(classes) if isinstance(classes, Mapping) else {code: code for code in classes}
    if not mapping:
        raise ValueError("classes must name at least one IEMOCAP emotion code")
    return mapping, list(dict.fromkeys(mapping.values()))


class _Unusable(Exception):
    """Internal: a labelled utterance that cannot be used; `args` = (message, reason counted when skipped)."""


def _utterance_row(
    utterance: dict, session_dir: Path, label_file: Path, transcripts: dict[str, str], transcript_file: Path
) -> dict:
    """One labelled utterance as the output's columns (without `label`); raises _Unusable saying why."""
    utterance_id, dialog = utterance["id"], label_file.stem
    wav = session_dir / "sentences" / "wav" / dialog / f"{utterance_id}.wav"
    where = f"utterance {utterance_id} (labelled in {label_file})"
    if not wav.is_file():
        raise _Unusable(f"{where} has no audio file {wav}", "without a wav file")
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
) -> Dataset:
    """Every labelled utterance of the release whose emotion is in `classes`, as one Dataset.

    Args:
        root: the `IEMOCAP_full_release` folder (or its parent).
        classes: emotion code -> class name (default: the 4-class map, hap + exc -> happy), or a
            list of codes that each become a class (e.g. `["neu", "ang", "sad", "hap", "fru"]`).
        on_missing: "error" (default) raises on a labelled utterance without a wav file or
            transcript, whose wav is not readable audio (not a sound file, empty, 0 frames) or whose
            header line in the label file does not parse; "skip" leaves such utterances out, counts
            them by reason and logs them.
    """
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    release = _release_root(root)
    mapping, names = _class_map(classes)
    rows: dict[str, list] = {column: [] for column in [*_FEATURE_COLUMNS, "label"]}
    skipped: list[str] = []
    skipped_reasons: Counter = Counter()
    for session in IEMOCAP_SESSIONS:
        session_dir = release / f"Session{session}"
        if not session_dir.is_dir():
            continue
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        label_files = sorted(label_dir.glob("*.txt")) if label_dir.is_dir() else []
        if not label_files:
            raise IemocapFormatError(
                f"{label_dir}: expected one <dialog>.txt label file per dialog, found none"
            )
        for label_file in label_files:
            transcript_file = session_dir / "dialog" / "transcriptions" / label_file.name
            transcripts = read_transcriptions(transcript_file) if transcript_file.is_file() else {}
            utterances, garbled = _parse_emo_evaluation(label_file)
            for problem in garbled:
                if on_missing == "error":
                    raise IemocapFormatError(
                        problem + "; pass on_missing='skip' to leave such utterances out"
                    )
                skipped.append(problem)
                skipped_reasons["with a header line that does not parse"] += 1
            for utterance in utterances:
                if utterance["emotion"] not in mapping:
                    continue
                try:
                    values = _utterance_row(utterance, session_dir, label_file, transcripts, transcript_file)
                except _Unusable as err:
                    problem, reason = err.args
                    if on_missing == "error":
                        raise IemocapFormatError(
                            problem + "; pass on_missing='skip' to leave such utterances out"
                        ) from None
                    skipped.append(problem)
                    skipped_reasons[reason] += 1
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
    if not rows["id"]:
        raise IemocapFormatError(f"{release}: no utterance labelled with any of {sorted(mapping)}")
    features = Features({**_FEATURE_COLUMNS, "label": ClassLabel(names=names)})
    dataset = Dataset.from_dict(rows, features=features)
    counts = Counter(rows["label"])
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
    if protocol not in IEMOCAP_NUM_FOLDS:
        raise ValueError(f"protocol must be one of {sorted(IEMOCAP_NUM_FOLDS)}, got {protocol!r}")
    num_folds = IEMOCAP_NUM_FOLDS[protocol]
    if not isinstance(fold, (int, np.integer)) or not 0 <= fold < num_folds:
        raise ValueError(
            f"fold must be an integer in 0..{num_folds - 1} for the {protocol} protocol, got {fold!r}"
        )
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
        kept, held = stratified_split(labels, validation_fraction, seed)
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
                f"{protocol} fold {fold}: the {name} split ({where}) holds no utterance; "
                "is a session missing from the release?"
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
) -> DatasetDict:
    """One fold of IEMOCAP as DatasetDict(train, validation, test).

    Columns: id, audio (path), text, label (ClassLabel), session, speaker (`Ses01_F`), gender,
    dialog, method (impro / script), emotion (the release's code), start, end (the label file's
    timestamps), duration (seconds, from the wav header). See `iemocap_fold_indices` for the two
    protocols and `load_iemocap_utterances` for `classes` and `on_missing`.

    `method`: "all" (default, the paper), or only the "improvised" or the "scripted" dialogs. Every
    session's actors read the same scripts, so scripted test transcripts occur word for word in
    training (see docs/data.md); "improvised" is the split without that leak.
    """
    if method != "all" and method not in IEMOCAP_METHODS:
        raise ValueError(f"method must be one of {['all', *IEMOCAP_METHODS]}, got {method!r}")
    utterances = load_iemocap_utterances(root, classes=classes, on_missing=on_missing)
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
