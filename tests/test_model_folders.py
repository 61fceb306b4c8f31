"""Saved model folders that are missing, incomplete or damaged: one error naming the folder or the file."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
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
    if problem == "no folder":
        model, expected = "./no/such/model", "folder not found: ./no/such/model"
    else:
        folder = _copy(saved, tmp_path)
        (folder / "config.json").unlink()
        model, expected = str(folder), "missing config.json"
    assert expected in _cli_error(model, capsys, tmp_path)


# -- weights that do not fit the model the config describes ------------------------------------------
def _rewrite_weights(folder, keep=lambda name: True, extra=None):
    from safetensors.torch import load_file, save_file

    weights = folder / "model.safetensors"
    tensors = {name: tensor for name, tensor in load_file(weights).items() if keep(name)}
    save_file({**tensors, **(extra or {})}, weights, metadata={"format": "pt"})
    return weights


def _edit_config(folder, edit):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return path


def _cli_error(model, capsys, audio_folder=None):
    """The one line `turbo-hf predict MODEL` answers, on a real audio file (checked before the model)."""
    import numpy as np
    import soundfile as sf

    from turbo_hf.cli import EXIT_BAD_INPUT, main

    audio = Path(audio_folder or Path(model).parent) / "a.wav"
    sf.write(audio, np.zeros(1600, np.float32), 16000)
    assert main(["predict", str(model), "--audio", str(audio), "--text", "x"]) == EXIT_BAD_INPUT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "Traceback" not in error[0], error
    return error[0]


def test_a_clean_save_and_load_reports_nothing_missing(saved):
    _, info = TurboForAudioTextClassification.from_pretrained(saved, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]


@pytest.mark.parametrize(
    "dropped,expected",
    [
        ("classifier.", r"lacks 2 tensors of the model: classifier.bias, classifier.weight;"),
        ("text_model.", r"lacks \d+ tensors of the model: text_model\..*, \.\.\.;"),
        ("", r"lacks \d+ tensors of the model: audio_model\..*, \.\.\.;"),
    ],
)
def test_weights_missing_tensors_are_an_error_naming_the_file_and_the_tensors(
    saved, tmp_path, capsys, dropped, expected
):
    folder = _copy(saved, tmp_path)
    weights = _rewrite_weights(folder, keep=lambda name: dropped and not name.startswith(dropped))
    with pytest.raises(OSError, match=re.escape(str(weights)) + " " + expected):
        TurboForAudioTextClassification.from_pretrained(folder)
    assert str(weights) in _cli_error(folder, capsys)


def test_weights_holding_tensors_the_model_lacks_are_an_error(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    weights = _rewrite_weights(folder, extra={"junk.weight": torch.zeros(3)})
    with pytest.raises(
        OSError, match=re.escape(f"{weights} holds 1 tensor the model does not have: junk.weight")
    ):
        TurboForAudioTextClassification.from_pretrained(folder)


def test_a_text_config_of_another_family_than_the_weights_is_named(saved, tmp_path, capsys):
    folder = _copy(saved, tmp_path)
    gpt2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 146}
    config = _edit_config(folder, lambda c: c.__setitem__("text_config", gpt2))
    expected = (
        rf"{re.escape(str(config))} text_config is gpt2 but {re.escape(str(folder / 'model.safetensors'))} "
        r"holds the tensors of another text encoder: \d+ missing \(text_model\.h\.0.*\), \d+ unexpected "
        r"\(text_model\.embeddings\..*\)"
    )
    with pytest.raises(ValueError, match=expected):
        TurboForAudioTextClassification.from_pretrained(folder)
    assert "text_config is gpt2" in _cli_error(folder, capsys)


@pytest.mark.parametrize(
    "edit,override,expected",
    [
        (
            lambda c: c.update(id2label={"0": "a", "1": "b"}, label2id={"a": 0, "b": 1}),
            {},
            r"classifier.bias \(checkpoint \(3,\), model \(2,\)\).*num_labels \(id2label\)",
        ),
        (None, {"num_labels": 5}, r"classifier.bias \(checkpoint \(3,\), model \(5,\)\).*num_labels"),
        (lambda c: c.update(projection_dim=24), {}, r"audio_projection.bias .*projection_dim"),
        (
            lambda c: c["text_config"].update(hidden_size=48),
            {},
            r"text_model\..* \(checkpoint \(\d+, 32\), model \(\d+, 48\)\).*text_config.hidden_size",
        ),
    ],
)
def test_config_sizes_that_differ_from_the_weights_name_the_tensors_and_the_field(
    saved, tmp_path, capsys, edit, override, expected
):
    folder = _copy(saved, tmp_path)
    if edit is not None:
        _edit_config(folder, edit)
    with pytest.raises(ValueError, match=expected + r".*ignore_mismatched_sizes=True"):
        TurboForAudioTextClassification.from_pretrained(folder, **override)
    if not override:
        assert "ignore_mismatched_sizes" in _cli_error(folder, capsys)


def test_a_new_head_of_another_size_is_still_possible_on_request(saved):
    model = TurboForAudioTextClassification.from_pretrained(saved, num_labels=5, ignore_mismatched_sizes=True)
    assert model.classifier.out_features == 5


def test_num_labels_that_disagrees_with_id2label_in_config_json_is_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit_config(folder, lambda c: c.update(num_labels=5))
    with pytest.raises(ValueError, match=r"num_labels=5 .*id2label names 3 classes"):
        TurboForAudioTextClassification.from_pretrained(folder)


# -- config.json that is no Turbo config --------------------------------------------------------------
@pytest.mark.parametrize("text,kind", [("[1, 2, 3]", "a list"), ("null", "null"), ('"turbo"', "a string")])
def test_a_config_json_that_is_no_json_object_is_named(saved, tmp_path, capsys, text, kind):
    folder = _copy(saved, tmp_path)
    (folder / "config.json").write_text(text)
    expected = re.escape(f"{folder / 'config.json'} holds {kind}, not a JSON object of config fields")
    for load in (TurboForAudioTextClassification.from_pretrained, TurboConfig.from_pretrained):
        with pytest.raises(OSError, match=expected):
            load(folder)
    assert "not a JSON object" in _cli_error(folder, capsys)


def test_id2label_given_as_a_list_is_named(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    config = _edit_config(folder, lambda c: c.update(id2label=["a", "b", "c"]))
    for load in (TurboForAudioTextClassification.from_pretrained, TurboConfig.from_pretrained):
        with pytest.raises(
            ValueError, match=rf"{re.escape(str(config))}: id2label must be an object .*got a list"
        ):
            load(folder)


def test_a_plain_encoder_folder_is_not_a_turbo_model(tmp_path, capsys):
    from transformers import BertModel

    from turbo_hf.testing.tiny_encoders import tiny_text_config

    folder = tmp_path / "bert"
    BertModel(tiny_text_config("bert")).save_pretrained(folder)
    expected = f"not a Turbo model: {folder / 'config.json'} has model_type 'bert' (expected 'turbo')"
    for load in (TurboForAudioTextClassification.from_pretrained, TurboConfig.from_pretrained):
        with pytest.raises(ValueError, match=re.escape(expected)):
            load(folder)
    assert expected in _cli_error(folder, capsys)


def test_a_turbo_folder_whose_model_type_was_edited_is_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit_config(folder, lambda c: c.update(model_type="bert"))
    with pytest.raises(ValueError, match="not a Turbo model: .* has model_type 'bert'"):
        TurboForAudioTextClassification.from_pretrained(folder)


# -- sharded weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("{not json", "is not valid JSON"),
        ("[]", "holds a list, not a JSON object with a weight_map"),
        ('{"weight_map": ["model-00001-of-00001.safetensors"]}', "weight_map must map tensor names"),
    ],
)
def test_a_damaged_shard_index_is_an_error_naming_it(saved, tmp_path, capsys, text, expected):
    folder = _copy(saved, tmp_path)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    index = folder / "model.safetensors.index.json"
    index.write_text(text)
    with pytest.raises(OSError, match=re.escape(f"{index} {expected}")):
        TurboForAudioTextClassification.from_pretrained(folder)
    assert str(index) in _cli_error(folder, capsys)


def test_sharded_weights_with_an_intact_index_still_load(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    TurboForAudioTextClassification.from_pretrained(saved).save_pretrained(folder, max_shard_size="100KB")
    assert (folder / "model.safetensors.index.json").is_file()
    assert TurboForAudioTextClassification.from_pretrained(folder).config.num_labels == 3
