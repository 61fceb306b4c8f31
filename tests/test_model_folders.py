"""Saved model folders that are missing, incomplete or damaged: one error naming the folder or the file."""

from __future__ import annotations

import os
import shutil

import pytest
import transformers
from conftest import TurboModelTester

from turbo_hf import TurboConfig, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.model_folders import local_folder
from turbo_hf.pipeline import TASK


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("saved") / "model"
    TurboModelTester().save_classifier(folder, ["a", "b", "c"])
    return folder


def _copy(saved, tmp_path, name="copy"):
    target = tmp_path / name
    shutil.copytree(saved, target)
    return target


def test_a_folder_without_config_json_says_the_file_is_missing(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "config.json").unlink()
    for load in (TurboForAudioTextClassification.from_pretrained, TurboConfig.from_pretrained):
        with pytest.raises(FileNotFoundError, match=r"copy: missing config.json .*save_pretrained"):
            load(folder)


@pytest.mark.parametrize("damage", ["truncated", "random", "empty"])
def test_a_damaged_safetensors_file_is_an_error_naming_it(saved, tmp_path, damage):
    folder = _copy(saved, tmp_path)
    weights = folder / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(
        {"truncated": data[: len(data) // 2], "random": os.urandom(5000), "empty": b""}[damage]
    )
    with pytest.raises(OSError, match=rf"{weights} is not a complete safetensors file"):
        TurboForAudioTextClassification.from_pretrained(folder)
    # transformers' pipeline factory wraps what from_pretrained raises in a ValueError quoting it.
    with pytest.raises((OSError, ValueError), match=rf"{weights} is not a complete safetensors file"):
        transformers.pipeline(TASK, model=str(folder))


@pytest.mark.parametrize("path", ["./no/such/run", "/no/such/run", "runs/no/such", "../run"])
def test_a_local_path_that_does_not_exist_says_folder_not_found(path):
    for load in (TurboForAudioTextClassification.from_pretrained, TurboProcessor.from_pretrained):
        with pytest.raises(FileNotFoundError, match=rf"folder not found: {path}$"):
            load(path)
    with pytest.raises(FileNotFoundError, match=rf"folder not found: {path}$"):
        TurboConfig.from_pretrained(path)


def test_hub_ids_still_go_to_the_hub_loader(tmp_path):
    # No network here: the point is that they are not refused as missing folders.
    assert local_folder("facebook/wav2vec2-base") is None and local_folder("bert-base-uncased") is None
    assert local_folder(tmp_path) == tmp_path
    (tmp_path / "config.json").write_text("{}")
    assert local_folder(tmp_path / "config.json") is None  # a config file, read as such


def test_from_encoders_pretrained_names_a_missing_encoder_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"audio encoder folder not found: \./nowhere/audio"):
        TurboForAudioTextClassification.from_encoders_pretrained("./nowhere/audio", "bert-base-uncased")


@pytest.mark.parametrize(
    "removed,message",
    [
        (
            ["tokenizer.json"],
            r"the tokenizer files are missing: tokenizer.json \(or the vocabulary files vocab.txt\)",
        ),
        (["tokenizer.json", "tokenizer_config.json"], r"missing tokenizer_config.json"),
        (["processor_config.json"], r"missing processor_config.json or preprocessor_config.json"),
    ],
)
def test_missing_processor_files_are_named(saved, tmp_path, removed, message):
    folder = _copy(saved, tmp_path)
    for name in removed:
        (folder / name).unlink()
    with pytest.raises(FileNotFoundError, match=message):
        TurboProcessor.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match=message):
        transformers.pipeline(TASK, model=str(folder))


def test_an_intact_folder_still_loads_through_every_entry_point(saved):
    assert TurboForAudioTextClassification.from_pretrained(saved).config.num_labels == 3
    assert TurboProcessor.from_pretrained(saved).audio_window == "full"
    assert transformers.pipeline(TASK, model=str(saved)).model.config.id2label[2] == "c"


@pytest.mark.parametrize("problem", ["no folder", "no config.json"])
def test_the_cli_names_a_missing_model_folder_or_config_in_one_line(saved, tmp_path, capsys, problem):
    from turbo_hf.cli import EXIT_BAD_INPUT, main

    if problem == "no folder":
        model, expected = "./no/such/model", "folder not found: ./no/such/model"
    else:
        folder = _copy(saved, tmp_path)
        (folder / "config.json").unlink()
        model, expected = str(folder), "missing config.json"
    assert main(["predict", model, "--audio", "a.wav", "--text", "x"]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and expected in error[0], error
