"""Checkpoints and resume: `last` is the newest complete checkpoint, a failed save says what happened and
leaves no half-written checkpoint, output_dir is checked up front, and random crops resume exactly."""

import dataclasses
import errno
import json
import os
import shutil

import pytest
import safetensors.torch
import test_trainer
import torch
from test_trainer import _args, _trainer
from transformers import TrainerCallback

from turbo_hf import DataCollatorForAudioText, DecodeAndCrop, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.checkpoints import CheckpointSaveError, IncompleteCheckpointError, check_checkpoint
from turbo_hf.metrics import compute_metrics
from turbo_hf.trainer import TurboTrainer, TurboTrainingArguments

# The tiny encoders and the 3-class corpus of the trainer tests.
encoders, splits = test_trainer.encoders, test_trainer.splits


def _complete_checkpoint(folder):
    """The files a resume reads, small and whole."""
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": int(folder.name.split("-")[1])}))
    safetensors.torch.save_file({"weight": torch.zeros(4)}, folder / "model.safetensors")
    for name in ("optimizer.pt", "scheduler.pt"):
        torch.save({"state": {}}, folder / name)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, encoders, splits):
    """A real run of 4 steps with a checkpoint every 2."""
    root = tmp_path_factory.mktemp("finished")
    _trainer(encoders, splits, _args(root, max_steps=4, save_strategy="steps", save_steps=2)).train()
    return root / "run"


@pytest.fixture
def run_dir(tmp_path, finished_run):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


def _resume_last(output_dir):
    args = TurboTrainingArguments(output_dir=str(output_dir), report_to="none", resume_from_checkpoint="last")
    return args.checkpoint_to_resume()


def test_resume_last_finds_the_newest_checkpoint_and_a_fresh_run_warns_about_old_ones(tmp_path, caplog):
    args = TurboTrainingArguments(output_dir=str(tmp_path), report_to="none")
    with pytest.raises(ValueError, match="no checkpoint-\\* folder"):
        dataclasses.replace(args, resume_from_checkpoint="last").checkpoint_to_resume()
    for step in (2, 10):
        _complete_checkpoint(tmp_path / f"checkpoint-{step}")
    assert dataclasses.replace(args, resume_from_checkpoint="True").checkpoint_to_resume() == str(
        tmp_path / "checkpoint-10"
    )
    # A yaml / json config gives `true` as a bool.
    assert dataclasses.replace(args, resume_from_checkpoint=True).checkpoint_to_resume() == str(
        tmp_path / "checkpoint-10"
    )
    with caplog.at_level("WARNING", logger="turbo_hf"):
        assert args.checkpoint_to_resume() is None
    assert "already holds checkpoints (newest: checkpoint-10)" in caplog.text


def test_resume_last_skips_a_checkpoint_a_full_disk_cut_short_and_resumes_from_the_one_before(
    run_dir,
    encoders,
    splits,
    caplog,
):
    # What a full disk left in the campaign: no trainer_state.json and a truncated optimizer.pt.
    (run_dir / "checkpoint-4" / "trainer_state.json").unlink()
    _truncate(run_dir / "checkpoint-4" / "optimizer.pt")
    with caplog.at_level("WARNING", logger="turbo_hf"):
        assert _resume_last(run_dir) == str(run_dir / "checkpoint-2")
    assert "checkpoint-4" in caplog.text and "no trainer_state.json" in caplog.text
    assert "optimizer.pt is truncated" in caplog.text
    # (New TrainingArguments reset accelerate's state: resolve before building the trainer, as recipes do.)
    checkpoint = _resume_last(run_dir)
    resumed = _trainer(encoders, splits, _args(run_dir.parent, max_steps=4))
    resumed.train(resume_from_checkpoint=checkpoint)
    assert resumed.state.global_step == 4


def test_resume_last_skips_a_checkpoint_with_a_truncated_model_safetensors(run_dir, caplog):
    _truncate(run_dir / "checkpoint-4" / "model.safetensors", keep=0.9)
    with caplog.at_level("WARNING", logger="turbo_hf"):
        assert _resume_last(run_dir) == str(run_dir / "checkpoint-2")
    assert "model.safetensors is truncated" in caplog.text and "checkpoint-4" in caplog.text


def test_resume_last_without_a_complete_checkpoint_names_every_folder_and_why(run_dir):
    for step in (2, 4):
        (run_dir / f"checkpoint-{step}" / "scheduler.pt").unlink()
    with pytest.raises(IncompleteCheckpointError) as caught:
        _resume_last(run_dir)
    message = str(caught.value)
    assert all(f"checkpoint-{step}" in message for step in (2, 4)) and "no scheduler.pt" in message


def test_a_named_or_true_checkpoint_goes_through_the_same_check(run_dir, encoders, splits):
    (run_dir / "checkpoint-4" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    named = TurboTrainingArguments(
        output_dir=str(run_dir), report_to="none", resume_from_checkpoint=str(run_dir / "checkpoint-4")
    )
    with pytest.raises(IncompleteCheckpointError, match="checkpoint-4 is incomplete: model.safetensors"):
        named.checkpoint_to_resume()
    trainer = _trainer(encoders, splits, _args(run_dir.parent, max_steps=4))
    with pytest.raises(IncompleteCheckpointError, match="model.safetensors"):
        trainer.train(resume_from_checkpoint=str(run_dir / "checkpoint-4"))
    trainer.train(resume_from_checkpoint=True)  # the newest complete one: checkpoint-2
    assert trainer.state.global_step == 4
    check_checkpoint(run_dir / "checkpoint-2")


def test_resuming_a_checkpoint_of_another_model_config_names_the_fields_that_differ(
    run_dir, encoders, splits
):
    trainer = _trainer(encoders, splits, _args(run_dir.parent, max_steps=4), projection_dim=24)
    with pytest.raises(
        ValueError,
        match=r"checkpoint-2 was written by a model with projection_dim=16; this run builds projection_dim=24"
        r".*resume with the same settings, or start a new --output_dir",
    ):
        trainer.train(resume_from_checkpoint=str(run_dir / "checkpoint-2"))


def test_resuming_with_a_changed_loss_setting_warns_naming_it_and_resumes(run_dir, encoders, splits, caplog):
    trainer = _trainer(encoders, splits, _args(run_dir.parent, max_steps=4), temperature=0.1)
    trainer.train(resume_from_checkpoint=str(run_dir / "checkpoint-2"))
    assert trainer.state.global_step == 4
    assert "temperature=0.05; this run builds temperature=0.1" in caplog.text


@pytest.mark.parametrize(
    "failure",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 2240 vs 2134"),
    ],
)
def test_a_full_disk_during_a_checkpoint_says_so_and_leaves_no_half_written_checkpoint(
    tmp_path,
    encoders,
    splits,
    monkeypatch,
    failure,
):
    real_save = torch.save

    def save_until_the_disk_fills(obj, f, *args, **kwargs):
        if "checkpoint-2" in str(f):
            with open(f, "wb") as handle:
                handle.write(b"PK\x03\x04 cut short")
            raise failure
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    trainer = _trainer(encoders, splits, _args(tmp_path, max_steps=2, save_strategy="steps", save_steps=1))
    with pytest.raises(CheckpointSaveError) as caught:
        trainer.train()
    output = tmp_path / "run"
    message = str(caught.value)
    assert str(output / "checkpoint-2") in message and "the disk is full" in message
    assert "MiB free of" in message and str(failure) in message
    assert caught.value.__cause__ is failure
    assert not (output / "checkpoint-2").exists()
    assert _resume_last(output) == str(output / "checkpoint-1")


@pytest.mark.parametrize("where", ["under_a_file", "read_only"])
def test_an_output_dir_that_cannot_be_written_is_an_error_when_the_trainer_is_built(
    tmp_path,
    encoders,
    splits,
    monkeypatch,
    where,
):
    (tmp_path / "a_file").write_text("")
    output = tmp_path / "a_file" / "run" if where == "under_a_file" else tmp_path / "read_only"
    if where == "read_only":
        output.mkdir()
        real_open = os.open

        def read_only_open(path, flags, *args, **kwargs):
            if str(path).startswith(str(output)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only_open)
    with pytest.raises(ValueError, match=f"output_dir {output} is not writable"):
        _trainer(encoders, splits, _args(tmp_path, output_dir=str(output), max_steps=1))


def _crop_trainer(encoders, splits, args):
    """A trainer whose training split reads random 0.5 s windows drawn from the seed and epoch."""
    torch.manual_seed(0)
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        *encoders, num_labels=3, projection_dim=16
    )
    processor = TurboProcessor.from_encoders_pretrained(*encoders)
    crops = DecodeAndCrop(16000, max_duration=0.5, random_crop=True, seed=args.seed)
    return TurboTrainer(
        model=model,
        args=args,
        train_dataset=splits["train"].with_transform(crops),
        data_collator=DataCollatorForAudioText(processor),
        processing_class=processor,
        compute_metrics=compute_metrics,
    )


class _StopAt(TrainerCallback):
    """Stops (as a kill would) after step `step`'s checkpoint, keeping the longer run's LR schedule."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def _losses(trainer):
    return [
        (log["step"], log["ce_loss"], log["in_modal_loss"])
        for log in trainer.state.log_history
        if "ce_loss" in log
    ]


def test_a_resumed_run_with_random_crops_repeats_the_uninterrupted_run_exactly(tmp_path, encoders, splits):
    # 12 rows, batches of 4: 3 steps an epoch; the stop after step 4 lies inside the second epoch.
    whole = _crop_trainer(encoders, splits, _args(tmp_path / "whole", max_steps=5))
    whole.train()
    assert whole.train_dataset.format["format_kwargs"]["transform"].epoch == 1  # set by the trainer
    settings = dict(max_steps=5, save_strategy="steps", save_steps=4)
    first = _crop_trainer(encoders, splits, _args(tmp_path / "cut", **settings))
    first.add_callback(_StopAt(4))
    first.train()
    assert first.state.global_step == 4
    resumed = _crop_trainer(encoders, splits, _args(tmp_path / "cut", **settings))
    resumed.train(resume_from_checkpoint=str(tmp_path / "cut" / "run" / "checkpoint-4"))
    assert _losses(resumed) == _losses(whole) and len(_losses(whole)) == 5
    for (name, value), resumed_value in zip(
        whole.model.state_dict().items(), resumed.model.state_dict().values()
    ):
        assert torch.equal(value, resumed_value), name


def test_seeded_crops_depend_on_the_row_and_the_epoch_not_on_when_the_row_is_read(write_wav):
    paths = [str(write_wav(f"{i}.wav", seconds=2.0, frequency=200 + 50 * i)) for i in range(3)]
    crops = DecodeAndCrop(16000, max_duration=0.5, random_crop=True, seed=7)
    first = crops({"audio": list(paths)})["audio"]
    again = crops({"audio": list(reversed(paths))})["audio"][::-1]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(first, again))
    crops.set_epoch(1)
    next_epoch = crops({"audio": list(paths)})["audio"]
    assert any(a.tobytes() != b.tobytes() for a, b in zip(first, next_epoch))
    other_seed = DecodeAndCrop(16000, max_duration=0.5, random_crop=True, seed=8)({"audio": list(paths)})[
        "audio"
    ]
    assert any(a.tobytes() != b.tobytes() for a, b in zip(first, other_seed))
