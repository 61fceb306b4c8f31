"""A small generated corpus for the demo and the tests. SYNTHETIC: tones and keyword sentences, not speech.

`make_synthetic_corpus` writes real 16 kHz wav files with transcripts and labels, either in the
IEMOCAP release layout (read by `load_iemocap`) or as a CSV manifest (read by `load_manifest`).

Each class has an audio cue (a harmonic tone with a class pitch and amplitude-modulation rate)
and a text cue (a class keyword). Each cue is only partly reliable and its failures are
independent across the two modalities: by default a cue is present for 60% of utterances,
absent (noise instead of a tone, a sentence with no keyword) for 30%, and points at a wrong
class for 10%. So audio alone and text alone top out near 70% accuracy, and a model that fuses
them can reach about 80%: the task has the shape of multi-modal emotion recognition, at a size
a CPU trains in minutes. Figures obtained on it say nothing about real speech.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

SYNTHETIC_CLASSES = ("neutral", "happy", "sad", "angry")

# Audio cue per class index: (fundamental in Hz, amplitude-modulation rate in Hz).
_AUDIO_CUES = ((150.0, 0.0), (290.0, 7.0), (110.0, 2.0), (220.0, 12.0), (180.0, 4.0), (340.0, 9.0))
# Text cue per class index: keywords; the sentence carries one of them when the cue is present.
_KEYWORDS = (
    ("okay", "fine", "usual", "normal"),
    ("wonderful", "great", "love", "fantastic"),
    ("miserable", "lonely", "miss", "cry"),
    ("furious", "hate", "stupid", "awful"),
    ("computer", "assistant", "play", "timer"),
    ("yesterday", "friend", "dinner", "walked"),
)
_SUBJECTS = ("i", "you", "we", "they", "she", "he")
_VERBS = ("think", "said", "know", "feel", "guess", "told")
_OBJECTS = ("the meeting", "the weather", "that car", "the movie", "this house", "the letter", "our plan")
_FILLERS = ("really", "just", "so", "about", "maybe", "again")

SYNTHETIC_WORDS: tuple[str, ...] = tuple(
    sorted(
        {
            word
            for group in (
                *_KEYWORDS,
                _SUBJECTS,
                _VERBS,
                _FILLERS,
                _OBJECTS,
                ("it", "is", "was", "and", "today"),
            )
            for phrase in group
            for word in phrase.split()
        }
    )
)

# IEMOCAP emotion codes written for each of the four default classes (happy alternates hap / exc).
_IEMOCAP_CODES = {"neutral": ("neu",), "happy": ("hap", "exc"), "sad": ("sad",), "angry": ("ang",)}
# Utterances the 4-class loader must drop: labelled but outside the class set.
_DISTRACTOR_CODES = ("fru", "xxx", "sur")


def _cue(
    true_class: int, num_classes: int, rng: np.random.Generator, reliability: Sequence[float]
) -> int | None:
    """The class a cue points at: the true one, None (no cue) or a wrong one."""
    present, absent = reliability[0], reliability[1]
    draw = rng.random()
    if draw < present:
        return true_class
    if draw < present + absent or num_classes == 1:
        return None
    return int(rng.choice([c for c in range(num_classes) if c != true_class]))


def synthesize_waveform(
    cue: int | None,
    duration: float,
    rng: np.random.Generator,
    sampling_rate: int = 16000,
    pitch_shift: float = 1.0,
) -> np.ndarray:
    """A harmonic tone at the cue's pitch, modulated at its rate, in noise; noise only when cue is None."""
    time = np.arange(int(duration * sampling_rate)) / sampling_rate
    noise = rng.standard_normal(time.size)
    if cue is None:
        envelope = 0.5 + 0.5 * np.abs(
            np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * time + rng.uniform(0, np.pi))
        )
        return (0.3 * envelope * noise).astype(np.float32)
    pitch, rate = _AUDIO_CUES[cue % len(_AUDIO_CUES)]
    pitch *= pitch_shift * rng.uniform(0.95, 1.05)
    vibrato = 1 + 0.01 * np.sin(2 * np.pi * 5 * time)
    phase = 2 * np.pi * np.cumsum(pitch * vibrato) / sampling_rate
    tone = sum(np.sin(k * phase + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    envelope = 1.0 if rate == 0 else 0.55 + 0.45 * np.sin(2 * np.pi * rate * time + rng.uniform(0, 2 * np.pi))
    signal = 0.3 * envelope * tone + 0.05 * noise
    return signal.astype(np.float32)


def synthesize_sentence(cue: int | None, rng: np.random.Generator) -> str:
    """A short lowercase sentence; it holds a keyword of the cue's class unless cue is None."""
    words = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_FILLERS)]
    if cue is not None:
        words += ["it", "was", rng.choice(_KEYWORDS[cue % len(_KEYWORDS)])]
    words += ["and", rng.choice(_OBJECTS)]
    if rng.random() < 0.5:
        words.append("today")
    return " ".join(words)


def _utterance(true_class, num_classes, rng, reliability, sampling_rate, pitch_shift=1.0) -> dict:
    duration = float(np.clip(rng.lognormal(np.log(1.6), 0.35), 0.8, 4.0))
    audio_cue = _cue(true_class, num_classes, rng, reliability)
    text_cue = _cue(true_class, num_classes, rng, reliability)
    return {
        "waveform": synthesize_waveform(audio_cue, duration, rng, sampling_rate, pitch_shift),
        "text": synthesize_sentence(text_cue, rng),
        "duration": duration,
    }


def write_iemocap_release(
    root: str | os.PathLike,
    dialogs: Mapping[str, Sequence[Mapping]],
    sampling_rate: int = 16000,
    extra_transcript_lines: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write dialogs in the IEMOCAP release format (used by the synthetic corpus and the test fixtures).

    `dialogs` maps a dialog name (`Ses01F_impro01`) to utterance records with `id`, `start`, `end`,
    `text`, and optionally `emotion` (absent or None: only a transcript line is written) and
    `waveform` (absent or None: no wav file). The files follow the release: a `%` header and one
    block per labelled utterance with the evaluators' `C-E?:` / `A-E?:` lines, all F utterances
    before the M ones; transcripts in time order with CRLF line endings, then any extra lines.
    """
    root = Path(root)
    extra_transcript_lines = extra_transcript_lines or {}
    for dialog, utterances in dialogs.items():
        session_dir = root / f"Session{int(dialog[3:5])}"
        label_dir = session_dir / "dialog" / "EmoEvaluation"
        transcript_dir = session_dir / "dialog" / "transcriptions"
        wav_dir = session_dir / "sentences" / "wav" / dialog
        for folder in (label_dir, transcript_dir, wav_dir):
            folder.mkdir(parents=True, exist_ok=True)

        labelled = [u for u in utterances if u.get("emotion")]
        labelled.sort(key=lambda u: (u["id"].rsplit("_", 1)[1][0] != "F", u["id"]))
        blocks = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
        for utterance in labelled:
            blocks += [
                f"[{utterance['start']:.4f} - {utterance['end']:.4f}]\t{utterance['id']}\t"
                f"{utterance['emotion']}\t[2.5000, 3.0000, 2.5000]",
                "C-E1:\tNeutral;\t()",
                "C-E2:\tNeutral;\t()",
                "C-E4:\tNeutral; Frustration;\t()",
                "A-E3:\tval 3; act 2; dom  2;\t()",
                "A-F1:\tval 3; act 3; dom  3;\t()",
                "",
            ]
        (label_dir / f"{dialog}.txt").write_text("\n".join(blocks) + "\n", encoding="utf-8")

        lines = [
            f"{u['id']} [{u['start']:08.4f}-{u['end']:08.4f}]: {u['text']}"
            for u in sorted(utterances, key=lambda u: u["start"])
        ]
        lines += list(extra_transcript_lines.get(dialog, ()))
        with open(transcript_dir / f"{dialog}.txt", "w", encoding="utf-8", newline="") as handle:
            handle.write("".join(line + "\r\n" for line in lines))

        for utterance in utterances:
            if utterance.get("waveform") is not None:
                sf.write(
                    wav_dir / f"{utterance['id']}.wav", utterance["waveform"], sampling_rate, subtype="PCM_16"
                )
    return root


def _iemocap_dialogs(classes, n_per_class, rng, reliability, sampling_rate) -> dict[str, list[dict]]:
    """Two dialogs per session (one improvised, one scripted with a suffix), both speakers in each."""
    dialogs: dict[str, list[dict]] = {}
    for session in range(1, 6):
        names = (f"Ses{session:02d}F_impro01", f"Ses{session:02d}M_script01_1b")
        plan = [(c, i) for c in range(len(classes)) for i in range(n_per_class)]
        plan += [(None, i) for i in range(max(1, n_per_class * len(classes) // 10))]  # distractors
        order = rng.permutation(len(plan))
        clocks = dict.fromkeys(names, 1.0)
        counters = {(name, g): 0 for name in names for g in "FM"}
        for position in order:
            true_class, index = plan[position]
            # Each class gets both speakers and both dialogs of the session.
            gender = "FM"[index % 2]
            dialog = names[(index // 2 + (true_class or 0)) % 2]
            if true_class is None:
                record = _utterance(
                    int(rng.integers(len(classes))), len(classes), rng, reliability, sampling_rate
                )
                emotion = _DISTRACTOR_CODES[index % len(_DISTRACTOR_CODES)]
            else:
                shift = 1.15 if gender == "F" else 0.9
                record = _utterance(true_class, len(classes), rng, reliability, sampling_rate, shift)
                codes = _IEMOCAP_CODES.get(classes[true_class], (classes[true_class],))
                emotion = codes[index % len(codes)]
            start = clocks[dialog]
            clocks[dialog] = start + record["duration"] + 0.5
            number = counters[dialog, gender]
            counters[dialog, gender] += 1
            dialogs.setdefault(dialog, []).append(
                {
                    "id": f"{dialog}_{gender}{number:03d}",
                    "emotion": emotion,
                    "start": start,
                    "end": start + record["duration"],
                    "text": record["text"],
                    "waveform": record["waveform"],
                }
            )
    return dialogs


def _write_manifest(root: Path, classes, n_per_class, rng, reliability, sampling_rate) -> Path:
    """`audio/<id>.wav` + `manifest.csv` (id, audio relative to the manifest, text, label, split)."""
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for true_class, name in enumerate(classes):
        splits = ["train"] * n_per_class
        for position in range(max(1, n_per_class // 6)):  # ~70 / 15 / 15 per class
            splits[position] = "validation"
            splits[-1 - position] = "test"
        for index, split in enumerate(splits):
            record = _utterance(true_class, len(classes), rng, reliability, sampling_rate)
            utterance_id = f"{name}_{index:04d}"
            sf.write(
                root / "audio" / f"{utterance_id}.wav", record["waveform"], sampling_rate, subtype="PCM_16"
            )
            rows.append([utterance_id, f"audio/{utterance_id}.wav", record["text"], name, split])
    rows = [rows[i] for i in rng.permutation(len(rows))]
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "audio", "text", "label", "split"])
        writer.writerows(rows)
    return manifest


def make_synthetic_corpus(
    root: str | os.PathLike,
    layout: str = "iemocap",
    n_per_class: int = 20,
    seed: int = 0,
    classes: Iterable[str] = SYNTHETIC_CLASSES,
    reliability: Sequence[float] = (0.6, 0.3),
    sampling_rate: int = 16000,
) -> Path:
    """Write a synthetic corpus under `root`; returns the release root or the manifest path.

    Args:
        layout: "iemocap" (Session1..Session5 in the release format, both speakers of each
            session, `n_per_class` utterances per class and session, plus unlabelled-class
            distractors such as `fru` / `xxx`) or "manifest" (`n_per_class` utterances per class
            in `manifest.csv`, split about 70 / 15 / 15 into train / validation / test).
        classes: class names (at most six distinct cues). For the IEMOCAP layout the four
            default names are written as the release's codes (happy as hap or exc).
        reliability: (present, absent) probabilities of each cue; the rest points at a wrong class.
    """
    classes = tuple(classes)
    if not 1 <= len(classes) <= len(_AUDIO_CUES):
        raise ValueError(f"classes must name 1 to {len(_AUDIO_CUES)} classes, got {classes}")
    if len(reliability) != 2 or min(reliability) < 0 or sum(reliability) > 1:
        raise ValueError(
            f"reliability must be (present, absent) probabilities summing to at most 1, got {reliability}"
        )
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    rng = np.random.default_rng(seed)
    root = Path(root)
    if layout == "iemocap":
        from ..data.iemocap import IEMOCAP_EMOTION_CODES

        # Any other name would be written as an emotion code the release does not have.
        unknown = [
            name for name in classes if name not in _IEMOCAP_CODES and name not in IEMOCAP_EMOTION_CODES
        ]
        if unknown:
            raise ValueError(
                f"classes {unknown} are not names the IEMOCAP layout can write: use {list(_IEMOCAP_CODES)} "
                f"or the release's emotion codes {list(IEMOCAP_EMOTION_CODES)}"
            )
        dialogs = _iemocap_dialogs(classes, n_per_class, rng, reliability, sampling_rate)
        return write_iemocap_release(root, dialogs, sampling_rate)
    if layout == "manifest":
        return _write_manifest(root, classes, n_per_class, rng, reliability, sampling_rate)
    raise ValueError(f"layout must be 'iemocap' or 'manifest', got {layout!r}")


__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_WORDS",
    "make_synthetic_corpus",
    "synthesize_sentence",
    "synthesize_waveform",
    "write_iemocap_release",
]
