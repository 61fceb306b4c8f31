"""TurboConfig: every field checked (type, finiteness, range) with the field named; unknown keywords
raise with the closest field when given directly, and warn when read from a saved config."""

from __future__ import annotations

import json
import logging
import re

import pytest
from conftest import TurboModelTester
from transformers import AutoConfig

from turbo_hf import TurboConfig, TurboForAudioTextClassification
from turbo_hf.configuration_rules import check_turbo_field
from turbo_hf.testing.tiny_encoders import tiny_audio_config, tiny_text_config

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "field,value,error,expected",
    [
        ("temperature", NAN, ValueError, "finite"),
        ("temperature", INF, ValueError, "finite"),
        ("temperature", -INF, ValueError, "finite"),
        ("temperature", 0.0, ValueError, "> 0"),
        ("temperature", "0.05", TypeError, "a number"),
        ("temperature", True, TypeError, "a number"),
        ("ce_weight", NAN, ValueError, "finite"),
        ("ce_weight", 1.5, ValueError, r"\[0, 1\]"),
        ("ce_weight", -0.1, ValueError, r"\[0, 1\]"),
        ("dropout", "0.1", TypeError, "a number"),
        ("dropout", 1.0, ValueError, r"\[0, 1\)"),
        ("dropout", -0.1, ValueError, r"\[0, 1\)"),
        ("dropout", INF, ValueError, "finite"),
        ("projection_dim", 2.5, TypeError, "an integer"),
        ("projection_dim", "8", TypeError, "an integer"),
        ("projection_dim", True, TypeError, "an integer"),
        ("projection_dim", 0, ValueError, ">= 1"),
        ("num_labels", 0, ValueError, ">= 2"),
        ("num_labels", -3, ValueError, ">= 2"),
        ("num_labels", 2.5, TypeError, "an integer"),
        ("num_labels", "3", TypeError, "an integer"),
        ("encoder_dropout", NAN, ValueError, "finite"),
        ("encoder_dropout", -5.0, ValueError, "-1"),
        ("audio_encoder_dropout", 1.0, ValueError, r"\[0, 1\)"),
        ("text_encoder_dropout", "0", TypeError, "a number"),
        ("encoder_layerdrop", NAN, ValueError, "finite"),
        ("encoder_layerdrop", -2.0, ValueError, "-1"),
        ("initializer_range", NAN, ValueError, "finite"),
        ("initializer_range", 0.0, ValueError, "> 0"),
        ("gather_across_processes", "yes", TypeError, "True or False"),
        ("gather_across_processes", 1, TypeError, "True or False"),
        ("loss_mode", "simclr", ValueError, "one of"),
        ("loss_mode", None, TypeError, "a string"),
        ("text_pooling", 5, TypeError, "a string"),
        ("classify_on", "second", ValueError, "one of"),
        ("audio_window", "30s", ValueError, "one of"),
        ("feature_norm", "layer", ValueError, "one of"),
        ("duplicate_negatives", "drop", ValueError, "one of"),
        ("class_weights", "foo", ValueError, "balanced"),
        ("class_weights", [1.0, -1.0], ValueError, "positive"),
        ("class_weights", [1.0, NAN], ValueError, "finite"),
        ("class_weights", [1.0, "2"], ValueError, "numbers"),
        ("class_weights", [1.0], ValueError, "one weight per class"),
        ("problem_type", "regression", ValueError, "single_label_classification"),
        ("return_dict", "no", TypeError, "True or False"),
    ],
)
def test_every_field_is_checked_and_the_error_names_field_value_and_expectation(
    field, value, error, expected
):
    with pytest.raises(error, match=rf"TurboConfig\.{field}") as raised:
        TurboConfig(**{field: value})
    message = str(raised.value)
    assert repr(value) in message or str(value) in message, message
    assert re.search(expected, message), message


@pytest.mark.parametrize(
    "id2label,label2id,expected",
    [
        ({0: "a", 2: "b"}, None, r"ids 0\.\.1"),
        ({0: "a", 1: "a"}, None, "distinct"),
        ({0: "a", 1: "b"}, {"a": 1, "b": 0}, "label2id"),
    ],
)
def test_label_maps_must_number_the_classes_0_to_n_minus_1(id2label, label2id, expected):
    with pytest.raises(ValueError, match=expected):
        TurboConfig(id2label=id2label, label2id=label2id)


def test_good_values_are_kept_and_integers_given_for_floats_become_floats():
    config = TurboConfig(ce_weight=1, temperature=1, dropout=0, encoder_dropout=-1, projection_dim=8)
    assert config.ce_weight == 1.0 and isinstance(config.ce_weight, float)
    assert isinstance(config.temperature, float) and config.encoder_dropout == -1.0
    assert config.projection_dim == 8 and config.num_labels == 2


def test_check_turbo_field_is_the_one_rule_table_and_names_the_label_it_is_given():
    assert check_turbo_field("temperature", 0.1) == 0.1
    with pytest.raises(ValueError, match=r"--temperature must be a finite number > 0, got nan"):
        check_turbo_field("temperature", NAN, label="--temperature")
    with pytest.raises(KeyError, match="not a TurboConfig field"):
        check_turbo_field("temprature", 0.1)


def test_values_set_after_construction_are_checked_when_the_model_is_built():
    tester = TurboModelTester()
    tester.config.temperature = NAN
    with pytest.raises(ValueError, match="TurboConfig.temperature"):
        TurboForAudioTextClassification(tester.config)


def test_a_misspelt_keyword_raises_naming_the_closest_field():
    with pytest.raises(TypeError, match=r"unknown keyword argument 'temprature'.*did you mean 'temperature'"):
        TurboConfig(temprature=0.5)
    with pytest.raises(TypeError, match=r"'hidden_size'.*audio_config / text_config"):
        TurboConfig(hidden_size=32)


def test_from_encoders_pretrained_rejects_a_misspelt_keyword(tmp_path):
    tester = TurboModelTester()
    model = tester.model()
    model.audio_model.save_pretrained(tmp_path / "audio")
    model.text_model.save_pretrained(tmp_path / "text")
    with pytest.raises(TypeError, match=r"'ce_wieght'.*did you mean 'ce_weight'"):
        TurboForAudioTextClassification.from_encoders_pretrained(
            str(tmp_path / "audio"), str(tmp_path / "text"), ce_wieght=0.1
        )
    with pytest.raises(TypeError, match=r"'audio_windw'.*did you mean the TurboConfig field 'audio_window'"):
        TurboForAudioTextClassification.from_encoders_pretrained(
            str(tmp_path / "audio"), str(tmp_path / "text"), audio_windw="batch"
        )
    with pytest.raises(TypeError, match=r"'cache_dir'.*audio_cache_dir"):
        TurboForAudioTextClassification.from_encoders_pretrained(
            str(tmp_path / "audio"), str(tmp_path / "text"), cache_dir="/tmp"
        )


def test_misspelt_overrides_of_from_pretrained_raise(tmp_path):
    tester = TurboModelTester()
    tester.model().save_pretrained(tmp_path)
    with pytest.raises(TypeError, match=r"'temprature'.*did you mean 'temperature'"):
        TurboConfig.from_pretrained(tmp_path, temprature=0.5)
    with pytest.raises(TypeError, match=r"'ce_wieght'.*did you mean 'ce_weight'"):
        TurboForAudioTextClassification.from_pretrained(tmp_path, ce_wieght=0.1)
    loaded = TurboForAudioTextClassification.from_pretrained(tmp_path, ce_weight=0.1)
    assert loaded.config.ce_weight == 0.1


def test_keys_pretrained_config_knows_are_accepted_without_a_warning(caplog):
    base = TurboModelTester().config
    config_dict = {
        **base.to_dict(),
        "torch_dtype": "float32",
        "dtype": "float32",
        "name_or_path": "somewhere",
        "_commit_hash": "abc",
        "attn_implementation": "eager",
        "output_attentions": False,
        "output_hidden_states": False,
        "return_dict": True,
        "architectures": ["TurboForAudioTextClassification"],
        "transformers_version": "5.0.0",
        "problem_type": "single_label_classification",
        "max_length": 20,  # a generation parameter: PreTrainedConfig drops those
        "auto_map": {"AutoConfig": "x.TurboConfig"},
    }
    with caplog.at_level(logging.WARNING):
        TurboConfig(**config_dict)
        TurboConfig.from_dict(config_dict)
    assert "unknown" not in caplog.text


def test_a_saved_config_with_a_key_this_version_does_not_know_loads_with_a_warning(tmp_path, caplog):
    # A config.json written by another version (or edited by hand): warn, keep it, load the rest.
    config = TurboModelTester(temperature=0.07).config
    written = config.to_dict()
    written["temprature"] = 0.5
    written["label_smoothing"] = 0.1
    (tmp_path / "config.json").write_text(json.dumps(written))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    try:
        with caplog.at_level(logging.WARNING):
            loaded = TurboConfig.from_pretrained(tmp_path)
            auto = AutoConfig.from_pretrained(tmp_path)
    finally:
        hf_logging.set_verbosity_error()
    assert loaded.temperature == 0.07 and auto.temperature == 0.07
    assert "'temprature' (did you mean 'temperature'?)" in caplog.text
    assert "'label_smoothing'" in caplog.text
    assert loaded.temprature == 0.5  # kept, as transformers keeps keys it does not know


def test_a_saved_config_with_a_non_finite_value_is_refused_naming_the_field(tmp_path):
    written = TurboModelTester().config.to_dict()
    written["temperature"] = float("nan")
    (tmp_path / "config.json").write_text(json.dumps(written))  # json writes NaN
    with pytest.raises(ValueError, match="TurboConfig.temperature must be a finite number > 0, got nan"):
        TurboConfig.from_pretrained(tmp_path)


def test_save_and_reload_round_trips_every_field(tmp_path):
    config = TurboConfig(
        audio_config=tiny_audio_config(),
        text_config=tiny_text_config(),
        num_labels=3,
        class_weights=[1, 2, 3],
        loss_mode="cross",
        temperature=0.1,
        encoder_dropout=-1,
        feature_norm="batch",
    )
    config.save_pretrained(tmp_path)
    loaded = TurboConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert TurboConfig(**config.to_dict()).to_dict() == config.to_dict()


def test_every_turbo_config_field_has_a_rule():
    import dataclasses

    from transformers import PreTrainedConfig

    from turbo_hf.configuration_rules import TURBO_FIELD_RULES

    inherited = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    own = (
        {f.name for f in dataclasses.fields(TurboConfig)} - inherited - set(TurboConfig.sub_configs_defaults)
    )
    assert own <= set(TURBO_FIELD_RULES), own - set(TURBO_FIELD_RULES)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--temperature", "nan"], r"--temperature must be a finite number > 0, got nan"),
        (["--temperature", "inf"], r"--temperature must be a finite number > 0, got inf"),
        (["--ce_weight", "1.5"], r"--ce_weight must be a finite number in \[0, 1\], got 1.5"),
        (["--dropout", "-0.5"], r"--dropout must be a finite number in \[0, 1\), got -0.5"),
        (["--projection_dim", "0"], r"--projection_dim must be an integer >= 1, got 0"),
        (["--loss_mode", "simclr"], r"--loss_mode must be one of \('turbo'"),
        (["--encoder_layerdrop", "nan"], r"--encoder_layerdrop must be -1 .* got nan"),
        (["--class_weights", "[1, -1]"], r"--class_weights must be None, 'balanced' or a list"),
        (["--class_weights", "[1, 2"], r"--class_weights: '\[1, 2' is not a YAML / JSON value"),
    ],
)
def test_recipe_flags_of_turbo_fields_are_checked_at_parsing_naming_the_flag(tmp_path, argv, message):
    from turbo_hf.arguments import DataArguments, IemocapArguments, ModelArguments, parse_recipe_arguments
    from turbo_hf.trainer import TurboTrainingArguments

    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    with pytest.raises(ValueError, match=message):
        parse_recipe_arguments(types, {}, ["--output_dir", str(tmp_path), *argv])


def test_an_argument_file_with_a_non_finite_turbo_value_is_refused_naming_the_flag(tmp_path):
    from turbo_hf.arguments import DataArguments, IemocapArguments, ModelArguments, parse_recipe_arguments
    from turbo_hf.trainer import TurboTrainingArguments

    path = tmp_path / "args.json"
    path.write_text('{"output_dir": "out", "temperature": NaN}')  # Python's json reads NaN
    types = (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments)
    with pytest.raises(ValueError, match=r"--temperature must be a finite number > 0, got nan"):
        parse_recipe_arguments(types, {}, [str(path)])
    with pytest.raises(ValueError, match=r"--gather_across_processes must be True or False"):
        ModelArguments(gather_across_processes="yes")


@pytest.mark.parametrize("name,value", [("id2label", ["a", "b", "c"]), ("label2id", [("a", 0), ("b", 1)])])
def test_label_maps_that_are_no_dicts_are_named(name, value):
    with pytest.raises(TypeError, match=rf"TurboConfig.{name} must be a dict, got list"):
        TurboConfig(audio_config=tiny_audio_config(), text_config=tiny_text_config(), **{name: value})
