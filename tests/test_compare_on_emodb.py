"""recipes/compare_on_emodb.py: the speaker-independent split it writes and the k-NN probe it reports."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "compare_on_emodb.py"
spec = importlib.util.spec_from_file_location("compare_on_emodb", RECIPE)
compare_on_emodb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_on_emodb)


def test_split_manifest_tests_on_the_held_out_speakers_with_absolute_paths(tmp_path):
    emodb = tmp_path / "emodb"
    emodb.mkdir()
    rows = [
        {"audio": f"dataset/{speaker}a01Wa.wav", "text": "Der Lappen.", "label": "anger", "speaker": speaker}
        for speaker in ("03", "12", "08", "16")
    ]
    with (emodb / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    written = compare_on_emodb.write_split_manifest(emodb, tmp_path / "out")
    with written.open(newline="") as handle:
        split = {row["speaker"]: row for row in csv.DictReader(handle)}
    assert {speaker: row["split"] for speaker, row in split.items()} == {
        "03": "train",
        "12": "test",
        "08": "train",
        "16": "test",
    }
    assert all(Path(row["audio"]).is_absolute() for row in split.values())
    assert split["12"]["audio"] == str((emodb / "dataset" / "12a01Wa.wav").resolve())


def test_nearest_neighbour_accuracy_tells_clustered_from_mixed_classes():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16)) * 5
    classes = np.repeat(np.arange(4), 10)
    clustered = centres[classes] + rng.standard_normal((40, 16)) * 0.1
    assert compare_on_emodb.nearest_neighbour_accuracy(clustered, classes) == 1.0
    shuffled = rng.permutation(classes)  # the same points, labels that the geometry does not follow
    assert compare_on_emodb.nearest_neighbour_accuracy(clustered, shuffled) < 0.6


def test_repeated_set_flags_all_reach_the_runs():
    args = compare_on_emodb.parse_args(
        ["--set", "feature_norm=batch", "--set", "duplicate_negatives=mask", "temperature=0.1"]
    )
    assert args.set == ["feature_norm=batch", "duplicate_negatives=mask", "temperature=0.1"]


def test_a_variant_keeps_the_settings_it_was_first_run_with(tmp_path):
    compare_on_emodb.check_variant_settings(tmp_path, ["feature_norm=batch", "duplicate_negatives=mask"])
    compare_on_emodb.check_variant_settings(tmp_path, ["duplicate_negatives=mask", "feature_norm=batch"])
    with pytest.raises(SystemExit, match="feature_norm=batch.*use another --tag"):
        compare_on_emodb.check_variant_settings(tmp_path, ["duplicate_negatives=mask"])
