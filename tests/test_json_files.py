"""Strict JSON writing: undefined numbers become null, numpy / torch values become Python ones."""

import json
import math

import numpy as np
import pytest
import torch

from turbo_hf.json_files import dumps, strict_json, write_json


def test_undefined_numbers_become_null_throughout():
    value = {"eer": float("nan"), "rows": [1.0, float("inf"), (-math.inf, 2)], "ok": 0.5, "name": "x"}
    assert strict_json(value) == {"eer": None, "rows": [1.0, None, [None, 2]], "ok": 0.5, "name": "x"}


def test_numpy_and_torch_values_become_python_numbers():
    value = {
        "a": np.float32(np.nan),
        "b": np.arange(3),
        "c": torch.tensor([0.5, float("nan")]),
        "d": np.int64(4),
    }
    converted = strict_json(value)
    assert converted == {"a": None, "b": [0, 1, 2], "c": [0.5, None], "d": 4}
    assert type(converted["d"]) is int


def test_dumps_refuses_nothing_it_can_convert_and_write_json_replaces_the_file(tmp_path):
    assert json.loads(dumps({"x": float("nan")})) == {"x": None}
    path = tmp_path / "out.json"
    path.write_text("old")
    write_json(path, {"eer": np.float64("nan")}, sort_keys=True)
    assert path.read_text() == '{\n  "eer": null\n}\n'
    assert not (tmp_path / "out.json.partial").exists()


def test_an_object_json_cannot_hold_is_still_an_error():
    with pytest.raises(TypeError):
        dumps({"x": object()})
