"""Model card, the folder written for the Hub, and push_to_hub (HfApi monkeypatched: no network)."""

from pathlib import Path

import pytest
import yaml
from conftest import TurboModelTester
from huggingface_hub import HfApi, RepoUrl

from turbo_hf.hub import build_model_card, push_to_hub, save_for_hub

LABELS = ["neutral", "happy", "sad"]
TEST_METRICS = {"test_wa": 0.625, "test_ua": 0.5, "test_macro_f1": 0.4, "test_loss": 1.1, "epoch": 3.0}


@pytest.fixture(scope="module")
def tester():
    tester = TurboModelTester(loss_mode="turbo", ce_weight=0.3, temperature=0.07, dropout=0.1)
    tester.config.id2label = dict(enumerate(LABELS))
    tester.config.label2id = {label: index for index, label in enumerate(LABELS)}
    return tester


@pytest.fixture(scope="module")
def model(tester):
    model = tester.model()
    # As after from_encoders_pretrained("facebook/wav2vec2-base", "bert-base-uncased").
    model.config.audio_config._name_or_path = "facebook/wav2vec2-base"
    model.config.text_config._name_or_path = "bert-base-uncased"
    return model


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_model_card_metadata(model):
    card = build_model_card(model, eval_results=TEST_METRICS, dataset_name="iemocap", repo_id="me/turbo-ser")
    meta = front_matter(card)
    assert meta["pipeline_tag"] == "audio-classification"
    assert {"turbo_hf", "audio-text-classification", "contrastive-learning", "multimodal"} <= set(
        meta["tags"]
    )
    assert meta["library_name"] == "turbo_hf"
    assert meta["labels"] == LABELS
    assert meta["base_model"] == ["facebook/wav2vec2-base", "bert-base-uncased"]
    assert meta["datasets"] == ["iemocap"]
    (index,) = meta["model-index"]
    assert index["name"] == "turbo-ser"
    (result,) = index["results"]
    assert result["dataset"]["split"] == "test"
    values = {metric["type"]: metric["value"] for metric in result["metrics"]}
    assert values == {"wa": 0.625, "ua": 0.5, "macro_f1": 0.4}  # loss and epoch are not results


def test_model_card_body_states_method_and_usage(model):
    card = build_model_card(model, eval_results=TEST_METRICS, repo_id="me/turbo-ser")
    body = card.split("---\n", 2)[2]
    for expected in [
        "wav2vec2",
        "facebook/wav2vec2-base",
        "bert",
        "`turbo`",
        "λ (CE weight) | 0.3",
        "τ (temperature) | 0.07",
        "Projection dim | 16",
        "Dropout | 0.1",
        "0.6250",
        'pipeline("audio-text-classification", model="me/turbo-ser")',
        'AutoModel.from_pretrained("me/turbo-ser")',
        "Turbo your multi-modal classification with contrastive learning",
        "Interspeech",
    ]:
        assert expected in body, expected


def test_model_card_without_results_or_hub_encoders():
    model = TurboModelTester(num_labels=2).model()  # encoders built from configs: no hub ids to cite
    meta = front_matter(build_model_card(model))
    assert "base_model" not in meta and "model-index" not in meta
    assert meta["labels"] == ["LABEL_0", "LABEL_1"]


def test_save_for_hub_lists_the_files_it_wrote(model, tester, tmp_path):
    files = save_for_hub(model, tester.processor, tmp_path, eval_results=TEST_METRICS)
    assert {"README.md", "config.json", "model.safetensors", "processor_config.json"} <= set(files)
    assert not any(name.endswith(".bin") for name in files)
    assert files == sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())


def test_push_to_hub_uploads_exactly_the_saved_files(model, tester, tmp_path, monkeypatch):
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs, self.token)
        return RepoUrl(f"https://huggingface.co/me/{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, **kwargs):
        folder = Path(folder_path)  # gone after push_to_hub returns: record what it held
        calls["upload"] = {
            "repo_id": repo_id,
            "files": sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
            "readme": (folder / "README.md").read_text(encoding="utf-8"),
            "commit_message": commit_message,
        }
        return "commit-info"

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    result = push_to_hub(
        model, tester.processor, "turbo-ser", eval_results=TEST_METRICS, token="hf_x", private=True
    )

    assert result == "commit-info"
    repo_id, kwargs, token = calls["create_repo"]
    assert repo_id == "turbo-ser" and kwargs["exist_ok"] is True and kwargs["private"] is True
    assert token == "hf_x"
    upload = calls["upload"]
    assert upload["repo_id"] == "me/turbo-ser"
    assert upload["files"] == save_for_hub(
        model, tester.processor, tmp_path / "local", eval_results=TEST_METRICS
    )
    assert 'model="me/turbo-ser"' in upload["readme"] and "0.6250" in upload["readme"]


def _model_table_rows(card: str) -> list[str]:
    body = card.split("---\n", 2)[2]
    table = body.split("## Model\n", 1)[1].split("## Evaluation", 1)[0]
    return [line for line in table.strip().splitlines()]


def test_labels_with_pipes_or_line_breaks_stay_inside_their_table_cell():
    import re

    labels = ["a|b", "two\nlines", "back`tick", "plain"]
    tester = TurboModelTester(num_labels=len(labels))
    model = tester.model()
    model.config.id2label = dict(enumerate(labels))
    model.config.label2id = {label: index for index, label in enumerate(labels)}
    model.config.audio_config._name_or_path = "/data/my|encoder"
    card = build_model_card(model)
    rows = _model_table_rows(card)
    assert all(row.startswith("|") and len(re.findall(r"(?<!\\)\|", row)) == 3 for row in rows), rows
    (labels_row,) = [row for row in rows if row.startswith("| Labels |")]
    assert r"`a\|b`" in labels_row and r"`two\nlines`" in labels_row and "``back`tick``" in labels_row
    assert front_matter(card)["labels"] == labels  # the YAML keeps them as they are


def test_save_for_hub_refuses_a_folder_holding_files_it_would_not_write(model, tester, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"old weights")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("x")
    with pytest.raises(
        FileExistsError,
        match=r"export holds files this save does not write: \['notes/todo.txt', 'pytorch_model.bin'\]",
    ):
        save_for_hub(model, tester.processor, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes", "pytorch_model.bin"]  # nothing written


def test_save_for_hub_with_overwrite_lists_only_what_it_wrote_and_leaves_other_files(
    model, tester, tmp_path, caplog
):
    import logging

    fresh = save_for_hub(model, tester.processor, tmp_path / "fresh")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(b"old weights")
    (folder / "README.md").write_text("an old card")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    try:
        with caplog.at_level(logging.WARNING):
            files = save_for_hub(model, tester.processor, folder, overwrite=True)
    finally:
        hf_logging.set_verbosity_error()
    assert files == fresh and "pytorch_model.bin" not in files
    assert "pytorch_model.bin" in caplog.text and "not part of what push_to_hub uploads" in caplog.text
    assert (folder / "pytorch_model.bin").read_bytes() == b"old weights"
    assert (folder / "README.md").read_text() != "an old card"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    # Saving again into a folder holding only what an earlier save wrote needs no flag.
    assert save_for_hub(model, tester.processor, tmp_path / "fresh") == fresh


def test_save_for_hub_keeps_a_hand_written_card_unless_told(model, tester, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "README.md").write_text("# my own card\n")
    with pytest.raises(FileExistsError, match=r"README.md \(a model card this library did not write\)"):
        save_for_hub(model, tester.processor, folder)
    assert (folder / "README.md").read_text() == "# my own card\n"
    save_for_hub(model, tester.processor, folder, overwrite=True)
    # The card of an earlier save is replaced without the flag.
    assert "README.md" in save_for_hub(model, tester.processor, folder)


@pytest.mark.parametrize("repo_id", ["my user/my model", "a/b/c", "-bad-/x"])
def test_a_repo_id_the_hub_refuses_is_named_before_anything_is_written(model, tester, tmp_path, repo_id):
    with pytest.raises(ValueError, match=r"is not a Hub repository id"):
        build_model_card(model, repo_id=repo_id)
    with pytest.raises(ValueError, match=r"is not a Hub repository id"):
        save_for_hub(model, tester.processor, tmp_path / "export", repo_id=repo_id)
