"""Reading the IEMOCAP release's text files: EmoEvaluation label files and transcriptions.

Only parsing lives here; `iemocap.py` finds the files, checks the wavs and builds the dataset. A line
that cannot be used is kept as (problem, reason counted when skipped) so that the loader raises or
skips it with its file and line (`on_missing`), and the public readers raise the first.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from transformers.utils import logging

from ..configuration_rules import closest

logger = logging.get_logger(__name__)

# Every consensus code the release uses (xxx: the evaluators did not agree). A code outside these is a
# damaged or hand-edited label file, not a class to drop quietly.
IEMOCAP_EMOTION_CODES = ("neu", "hap", "exc", "sad", "ang", "fru", "sur", "fea", "dis", "oth", "xxx")

# "[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]"
_LABEL_LINE = re.compile(
    r"^\[\s*(?P<start>\d+(?:\.\d+)?)\s*-\s*(?P<end>\d+(?:\.\d+)?)\s*\]\s+"
    r"(?P<id>Ses\d{2}[FM]_\S+_[FM]\d{3})\s+(?P<emotion>\w+)\s+\["
)
# "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me."  (ids such as ..._FXX0 are not utterances)
_TRANSCRIPT_LINE = re.compile(
    r"^(?P<id>Ses\d{2}[FM]_\S+_[FM]\d{3})\s*\[\s*[\d.]+\s*-\s*[\d.]+\s*\]:\s?(?P<text>.*)$"
)
# A line that starts with an utterance id is that utterance's transcript line, parsed or not.
_UTTERANCE_ID_START = re.compile(r"^(?P<id>Ses\d{2}[FM]_\S+_[FM]\d{3})(?=[\s\[:]|$)")


class IemocapFormatError(ValueError):
    """The folder is not an IEMOCAP release, or one of its files does not follow the release format."""


def _read_lines(path: Path) -> list[str]:
    # Transcripts use CRLF line endings and label files LF; splitlines() handles both.
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # Replaced, not refused: nobody here has checked that every file of the licensed release
        # decodes, and one odd byte in a transcript should not block all of it; but it is named.
        line = raw.count(b"\n", 0, err.start) + 1
        logger.warning(
            f"{path}, line {line}: not UTF-8 ({err.reason} at byte {err.start}); undecodable bytes are "
            "read as U+FFFD"
        )
        text = raw.decode("utf-8-sig", errors="replace")
    return text.splitlines()


def did_you_mean(code: str, known: Sequence[str]) -> str:
    """' (did you mean 'neu'?)' for the closest of `known` to `code` (any case), or ''."""
    close = closest(code.casefold(), known)
    return f" (did you mean {close!r}?)" if close else ""


def read_emo_evaluation(path: str | os.PathLike) -> list[dict]:
    """The labelled utterances of one EmoEvaluation file: id, emotion, start, end.

    Only the first line of each block carries the consensus label; the evaluators' `C-E?:` and
    `A-E?:` lines and the `%` header are skipped. Blocks list all F utterances before the M ones.
    An IemocapFormatError names the file, the line number and the line of the first header line
    that does not parse, has an emotion code outside `IEMOCAP_EMOTION_CODES`, ends before it starts
    or repeats an utterance already labelled; and a file with no utterance block at all.
    """
    utterances, problems = parse_emo_evaluation(Path(path), seen={})
    if problems:
        raise IemocapFormatError(problems[0][0])
    return utterances


def parse_emo_evaluation(
    path: Path, seen: dict[str, tuple[Path, int, str]], session: int | None = None
) -> tuple[list[dict], list[tuple[str, str]]]:
    """(the usable utterances of `path`, (problem, reason counted when skipped) for each header line
    that is not usable). `seen` maps the ids labelled so far, in this file or earlier ones, to (file,
    line, emotion), so that a second label is found across files; `session` is the folder's number."""
    utterances, problems, headers = [], [], 0
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        headers += text.startswith("[")  # only utterance headers start with "[" in these files
        match = _LABEL_LINE.match(text)
        where = f"{path}, line {number}"
        if not match:
            if text.startswith("["):
                problems.append(
                    (
                        f"{where}: an utterance header that does not parse: {text!r}; expected "
                        "'[start - end]<TAB>utterance id<TAB>emotion<TAB>[v, a, d]' as in "
                        "'[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5000, 2.5000, 2.5000]'",
                        "with a header line that does not parse",
                    )
                )
            continue
        utterance_id, emotion = match["id"], match["emotion"]
        start, end = float(match["start"]), float(match["end"])
        if emotion not in IEMOCAP_EMOTION_CODES:
            problem = (
                f"utterance {utterance_id} has emotion code {emotion!r}, which the release does not use"
                f"{did_you_mean(emotion, IEMOCAP_EMOTION_CODES)}; its codes are {list(IEMOCAP_EMOTION_CODES)}",
                "with an emotion code the release does not use",
            )
        elif end < start:
            problem = (
                f"utterance {utterance_id} ends at {end} s, before it starts ({start} s)",
                "that end before they start",
            )
        elif session is not None and speaker_of(utterance_id)[0] != session:
            problem = (
                f"utterance {utterance_id} belongs to session {speaker_of(utterance_id)[0]}, but this label "
                f"file is in Session{session}",
                "in another session's label file",
            )
        elif utterance_id in seen:
            first_file, first_line, first_emotion = seen[utterance_id]
            problem = (
                f"utterance {utterance_id} ({emotion}) is labelled more than once: also at {first_file}, "
                f"line {first_line} ({first_emotion}); the release has one block per utterance",
                "labelled more than once",
            )
        else:
            seen[utterance_id] = (path, number, emotion)
            utterances.append({"id": utterance_id, "emotion": emotion, "start": start, "end": end})
            continue
        problems.append((f"{where}: {problem[0]}", problem[1]))
    if not headers:
        raise IemocapFormatError(
            f"{path}: no utterance block (no line starting with '['); an EmoEvaluation file holds one "
            "block per utterance of its dialog. Is the file empty or cut short?"
        )
    return utterances, problems


def read_transcriptions(path: str | os.PathLike) -> dict[str, str]:
    """Utterance id -> transcript. Lines without an utterance id (`M: Yeah.`, `..._FXX0`) are skipped;
    a line that starts with an utterance id but does not parse, or a second line for an id with other
    text, is an IemocapFormatError naming the file and the line."""
    transcripts, problems = parse_transcriptions(Path(path))
    if problems:
        raise IemocapFormatError(next(iter(problems.values()))[0])
    return transcripts


def parse_transcriptions(path: Path) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(utterance id -> transcript, utterance id -> (problem, reason counted when skipped))."""
    transcripts: dict[str, str] = {}
    first_lines: dict[str, int] = {}
    problems: dict[str, tuple[str, str]] = {}
    for number, line in enumerate(_read_lines(path), start=1):
        text = line.strip()
        match = _TRANSCRIPT_LINE.match(text)
        if match:
            utterance_id, words = match["id"], match["text"].strip()
            if utterance_id not in transcripts:
                transcripts[utterance_id], first_lines[utterance_id] = words, number
            elif transcripts[utterance_id] != words:  # the same line twice is harmless
                problems.setdefault(
                    utterance_id,
                    (
                        f"{path}, line {number}: a second transcript line for {utterance_id} with other "
                        f"text: {text!r}; line {first_lines[utterance_id]} reads {transcripts[utterance_id]!r}",
                        "with two different transcript lines",
                    ),
                )
        elif started := _UTTERANCE_ID_START.match(text):
            problems.setdefault(
                started["id"],
                (
                    f"{path}, line {number}: a transcript line that does not parse: {text!r}; expected "
                    "'<utterance id> [start-end]: text' as in "
                    "'Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.'",
                    "with a transcript line that does not parse",
                ),
            )
    return transcripts, problems


def speaker_of(utterance_id: str) -> tuple[int, str, str]:
    """(session, gender, speaker) of an utterance id.

    The gender is the letter of the *last* token: in `Ses01F_impro01_M000` the male actor speaks;
    `Ses01F` only names the dialog's lead.
    """
    session = int(utterance_id[3:5])
    gender = utterance_id.rsplit("_", 1)[1][0]
    return session, gender, f"Ses{session:02d}_{gender}"


__all__ = [
    "IEMOCAP_EMOTION_CODES",
    "IemocapFormatError",
    "did_you_mean",
    "parse_emo_evaluation",
    "parse_transcriptions",
    "read_emo_evaluation",
    "read_transcriptions",
    "speaker_of",
]
