"""A miniature IEMOCAP release written in the exact release format, with its known quirks.

Five sessions, both speakers of each, one improvised and one scripted dialog per session (names
with suffixes as in the release), consensus labels the 4-class loader must keep (neu, hap, exc,
sad, ang) and drop (fru, xxx, oth), a transcript that is only a tag, transcript lines that are
not utterances (`M: ...`, `..._FXX0` ids, one of them twice), and the lead's letter differing
from the speaker's (`Ses01F_impro01_M000` is the male actor).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from turbo_hf.testing.synthetic import write_iemocap_release

# Per speaker and dialog: the consensus labels in the order the utterances are spoken.
SPEAKER_LABELS = ("neu", "hap", "exc", "sad", "ang", "fru", "xxx", "neu", "ang", "oth")
KEPT = {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}


def dialog_names(session: int) -> tuple[str, str]:
    suffixes = {3: ("Ses03M_impro05a", "Ses03F_script02_2"), 5: ("Ses05F_impro03", "Ses05M_script01_1b")}
    return suffixes.get(session, (f"Ses{session:02d}F_impro01", f"Ses{session:02d}M_script01_1"))


def write_iemocap_fixture(root: Path, sampling_rate: int = 16000) -> dict:
    """Write the tree; returns what a correct loader must find (per-class and per-speaker counts)."""
    rng = np.random.default_rng(0)
    dialogs, extra_lines = {}, {}
    expected_classes: Counter = Counter()
    expected_speakers: Counter = Counter()
    for session in range(1, 6):
        for dialog in dialog_names(session):
            records, clock = [], 2.0
            for index, emotion in enumerate(SPEAKER_LABELS):
                for gender in "FM":
                    utterance_id = f"{dialog}_{gender}{index:03d}"
                    duration = 0.1 + 0.01 * index
                    text = (
                        "[LAUGHTER]" if (index == 3 and gender == "M") else f"words of {utterance_id.lower()}"
                    )
                    records.append(
                        {
                            "id": utterance_id,
                            "emotion": emotion,
                            "start": clock,
                            "end": clock + duration,
                            "text": text,
                            "waveform": 0.1
                            * rng.standard_normal(int(duration * sampling_rate)).astype(np.float32),
                        }
                    )
                    clock += duration + 0.3
                    if emotion in KEPT:
                        expected_classes[KEPT[emotion]] += 1
                        expected_speakers[f"Ses{session:02d}_{gender}"] += 1
            extra_lines[dialog] = [
                "M: Yeah, okay.",
                f"{dialog}_FXX0 [{clock:08.4f}-{clock + 1:08.4f}]: Some unlabelled words.",
                f"{dialog}_FXX0 [{clock:08.4f}-{clock + 1:08.4f}]: Some unlabelled words.",
            ]
            dialogs[dialog] = records
    write_iemocap_release(root, dialogs, sampling_rate, extra_transcript_lines=extra_lines)
    return {"classes": expected_classes, "speakers": expected_speakers, "dialogs": dialogs}
