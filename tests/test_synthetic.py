"""The synthetic corpus: its layouts, its counts, and cues that make fusion worth it."""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from turbo_hf import load_iemocap, load_manifest
from turbo_hf.testing.synthetic import SYNTHETIC_CLASSES, make_synthetic_corpus, synthesize_waveform


def test_iemocap_layout_loads_with_balanced_classes_and_every_speaker(tmp_path):
    root = make_synthetic_corpus(tmp_path / "corpus", n_per_class=4, seed=0)
    splits = load_iemocap(root, protocol="speaker", fold=5)
    labels = Counter(label for split in splits.values() for label in split["label"])
    assert labels == {index: 4 * 5 for index in range(len(SYNTHETIC_CLASSES))}
    speakers = {speaker for split in splits.values() for speaker in split["speaker"]}
    assert len(speakers) == 10
    example = splits["test"][0]
    waveform, rate = sf.read(example["audio"])
    assert rate == 16000 and len(waveform) / rate == pytest.approx(example["duration"], abs=1e-3)
    # distractor labels (fru / xxx / sur) are written but not part of the 4-class set
    label_text = (root / "Session1" / "dialog" / "EmoEvaluation").glob("*.txt")
    assert any("\tfru\t" in path.read_text() or "\txxx\t" in path.read_text() for path in label_text)


def test_manifest_layout_has_three_splits_and_relative_audio_paths(tmp_path):
    manifest = make_synthetic_corpus(
        tmp_path, layout="manifest", n_per_class=12, classes=("no", "yes"), seed=1
    )
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24 and not rows[0]["audio"].startswith("/")
    splits = load_manifest(manifest)
    assert {name: len(split) for name, split in splits.items()} == {"train": 16, "validation": 4, "test": 4}
    assert splits["train"].features["label"].names == ["no", "yes"]


def test_the_corpus_is_reproducible_from_its_seed(tmp_path):
    first = make_synthetic_corpus(tmp_path / "a", layout="manifest", n_per_class=3, seed=7)
    second = make_synthetic_corpus(tmp_path / "b", layout="manifest", n_per_class=3, seed=7)
    assert first.read_text() == second.read_text()


def test_each_cue_alone_is_imperfect_and_together_they_are_better(tmp_path):
    """Per utterance, how often each modality's cue names the true class, and how often at least one does."""
    rng = np.random.default_rng(0)
    from turbo_hf.testing.synthetic import _cue

    draws = [(_cue(0, 4, rng, (0.6, 0.3)), _cue(0, 4, rng, (0.6, 0.3))) for _ in range(4000)]
    audio_right = np.mean([a == 0 for a, _ in draws])
    text_right = np.mean([t == 0 for _, t in draws])
    either_right = np.mean([a == 0 or t == 0 for a, t in draws])
    assert 0.55 < audio_right < 0.65 and 0.55 < text_right < 0.65
    assert either_right > 0.8


def test_audio_cues_differ_in_pitch_and_the_absent_cue_is_noise():
    rng = np.random.default_rng(0)
    spectra = []
    for cue in (0, 1, 2, 3):
        waveform = synthesize_waveform(cue, 1.0, rng)
        spectrum = np.abs(np.fft.rfft(waveform))
        spectra.append(int(np.argmax(spectrum[50:1000])) + 50)
    assert len(set(spectra)) == 4  # four distinct fundamentals (Hz, 1 s of audio)
    noise = synthesize_waveform(None, 1.0, rng)
    spectrum = np.abs(np.fft.rfft(noise))
    assert spectrum[50:1000].max() < 5 * np.median(spectrum[50:1000])  # no dominant tone


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        make_synthetic_corpus(tmp_path, layout="wav")
    with pytest.raises(ValueError, match="reliability"):
        make_synthetic_corpus(tmp_path, reliability=(0.8, 0.5))


def test_the_iemocap_layout_refuses_class_names_that_are_no_release_code(tmp_path):
    # They would be written as emotion codes, which load_iemocap refuses.
    with pytest.raises(ValueError, match=r"'directed'.*IEMOCAP"):
        make_synthetic_corpus(tmp_path, classes=("directed", "other"))
    root = make_synthetic_corpus(tmp_path / "codes", classes=("neutral", "fru"), n_per_class=2)
    assert len(load_iemocap(root, classes={"neu": "neutral", "fru": "fru"}, protocol="speaker")["test"]) > 0
