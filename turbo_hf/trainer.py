"""TurboTrainer: the transformers Trainer, logging Turbo's loss parts and with encoder-specific LR."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from transformers.utils import logging

from .checkpoints import (
    TRAINER_STATE_FILE,
    IncompleteCheckpointError,
    check_checkpoint,
    check_checkpoint_matches_model,
    check_output_dir_writable,
    checkpoint_save_error,
    newest_complete_checkpoint,
)
from .json_files import strict_json, write_json
from .metrics import greater_is_better
from .modeling_turbo import TurboClassifierOutput
from .sampling import DurationGroupedSampler
from .training_rules import check_early_stopping, check_training_fields, check_training_steps

logger = logging.get_logger(__name__)

# The loss parts of the model's output (every `*_loss` field but the total), logged under their names.
_LOSS_PARTS = tuple(name for name in TurboClassifierOutput.__dataclass_fields__ if name.endswith("_loss"))
_ENCODER_PREFIXES = ("audio_model.", "text_model.")


@dataclass
class TurboTrainingArguments(TrainingArguments):
    """TrainingArguments plus the settings only Turbo training needs.

    `remove_unused_columns` defaults to False: the collator decodes audio from the dataset's `audio`
    column, which the model's forward does not name.
    """

    encoder_learning_rate: float | None = field(
        default=None,
        metadata={
            "help": "Learning rate of the audio and text encoders; the projections and the classifier use "
            "`learning_rate`. Default: one learning rate for all."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={
            "help": "Stop after this many evaluations without improvement of `metric_for_best_model` (the paper: "
            "10 epochs with eval_strategy=epoch). Needs load_best_model_at_end."
        },
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "Minimum improvement that resets early-stopping patience."}
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Kept False: the collator needs the raw audio/text columns."}
    )
    length_column_name: str = field(
        default="duration",
        metadata={
            "help": "Column of utterance lengths for train_sampling_strategy=group_by_length (seconds, "
            "written by load_iemocap and load_manifest)."
        },
    )

    @property
    def resumes_last(self) -> bool:
        """`--resume_from_checkpoint last` (or `true`): go on from the newest checkpoint-* of output_dir."""
        value = self.resume_from_checkpoint
        # A yaml / json config gives `true` as a bool; the command line gives the string.
        return value is True or (isinstance(value, str) and value.lower() in ("last", "true"))

    @property
    def push_repo_id(self) -> str:
        """The repository `--push_to_hub` uploads to: `hub_model_id`, else output_dir's last component."""
        # As transformers names it: `--output_dir .` is the current folder's name.
        return self.hub_model_id or Path(self.output_dir).absolute().name

    @property
    def expects_optimizer_files(self) -> bool:
        """Whether this run's checkpoints hold optimizer.pt and scheduler.pt (DeepSpeed and FSDP save
        their own files; `save_only_model` saves none)."""
        return not (self.save_only_model or self.deepspeed or self.fsdp)

    def checkpoint_to_resume(self) -> str | None:
        """The checkpoint `trainer.train` resumes from, or None; warns about checkpoints left unused.

        `last` is the newest complete checkpoint (`turbo_hf.checkpoints.check_checkpoint`): newer
        incomplete ones are skipped with a warning naming them; a named checkpoint must be complete.
        """
        if self.resumes_last:
            newest = newest_complete_checkpoint(self.output_dir, self.expects_optimizer_files)
            if newest is None:
                raise ValueError(
                    f"--resume_from_checkpoint {self.resume_from_checkpoint}: no checkpoint-* folder in "
                    f"{self.output_dir}"
                )
            logger.info("Resuming from %s", newest)
            return newest
        last = last_checkpoint(self.output_dir)
        if self.resume_from_checkpoint:
            check_checkpoint(self.resume_from_checkpoint, self.expects_optimizer_files)
        elif last is not None:
            logger.warning(
                "%s already holds checkpoints (newest: %s) from an earlier run; this run starts afresh beside "
                "them. Pass --resume_from_checkpoint last to continue that run instead, or pick another "
                "--output_dir.",
                self.output_dir,
                os.path.basename(last),
            )
        return self.resume_from_checkpoint

    def __post_init__(self):
        # Before transformers' own checks, which let these through to the optimizer, the sampler or numpy.
        check_training_fields(self)
        check_training_steps(self)
        # transformers infers greater_is_better from a "loss" suffix only; an error rate such as EER
        # would then keep the worst checkpoint (metrics.METRICS knows). An explicit value still wins.
        if self.greater_is_better is None and self.metric_for_best_model is not None:
            self.greater_is_better = greater_is_better(self.metric_for_best_model)
        super().__post_init__()
        check_early_stopping(self)
        if self.push_to_hub:
            from .hub import check_can_push  # the hub module loads the pipeline and the model card

            check_can_push(self.push_repo_id, self.hub_token)
        if self.fp16 and self.device.type == "cpu":
            # accelerate turns fp16 autocast on for accelerators only: on the CPU the flag does nothing.
            logger.warning(
                "fp16=True has no effect on the CPU (use_cpu=True, or no GPU found): this run trains in fp32. "
                "Drop --fp16, or pass --bf16 true for bf16 autocast on the CPU."
            )


def last_checkpoint(output_dir: str) -> str | None:
    """The newest checkpoint-* folder of `output_dir`, complete or not, or None."""
    return get_last_checkpoint(output_dir) if os.path.isdir(output_dir) else None


class _CropEpochCallback(TrainerCallback):
    """Tells the training split's transform (`DecodeAndCrop` with a `seed`) which epoch's crops to draw,
    so that a resumed run reads the very windows the uninterrupted run would have read."""

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        dataset = getattr(train_dataloader, "dataset", None)
        transform = (getattr(dataset, "format", None) or {}).get("format_kwargs", {}).get("transform")
        if hasattr(transform, "set_epoch"):
            # On resume `state.epoch` is the checkpoint's (e.g. 1.5 in the middle of epoch 1).
            transform.set_epoch(math.floor(state.epoch or 0))


def _write_json(path: str, value) -> None:
    write_json(path, value, sort_keys=True)


class TurboTrainer(Trainer):
    """Trainer that logs the mean CE, in-modal and cross-modal losses beside the total at every
    logging step (and in evaluation), and gives the encoders their own learning rate if asked."""

    def __init__(self, model=None, args=None, *more, **kwargs):
        # Before the Trainer creates output_dir: a folder that cannot be written is named now, not at the
        # first checkpoint an epoch later (or as a bare OSError).
        if args is not None and args.should_save:
            check_output_dir_writable(args.output_dir)
        super().__init__(model, args, *more, **kwargs)
        self._loss_parts = {"train": defaultdict(list), "eval": defaultdict(list)}
        # Evaluation weights every batch by its rows, as the Trainer does for `eval_loss`.
        self._eval_rows = 0
        # (head, encoder) param-group indices when the encoders have their own learning rate.
        self._group_indices: tuple[int, int] | None = None
        patience = getattr(self.args, "early_stopping_patience", None)
        if patience is not None:
            check_early_stopping(self.args)  # again: the arguments may have been changed since
            self.add_callback(
                EarlyStoppingCallback(
                    early_stopping_patience=patience,
                    early_stopping_threshold=self.args.early_stopping_threshold,
                )
            )
        self.add_callback(_CropEpochCallback)

    def train(self, resume_from_checkpoint: str | bool | None = None, *args, **kwargs):
        """`Trainer.train`; `True` resumes from the newest complete checkpoint, and a named checkpoint must
        be complete (see `TurboTrainingArguments.checkpoint_to_resume`)."""
        expect_optimizer = getattr(self.args, "expects_optimizer_files", not self.args.save_only_model)
        if resume_from_checkpoint is True:
            resume_from_checkpoint = newest_complete_checkpoint(self.args.output_dir, expect_optimizer)
            if resume_from_checkpoint is None:
                raise ValueError(
                    f"resume_from_checkpoint=True: no checkpoint-* folder in {self.args.output_dir}"
                )
        elif resume_from_checkpoint:
            check_checkpoint(resume_from_checkpoint, expect_optimizer)
        # Under DeepSpeed ZeRO-3 the model's parameters are partitioned (shape [0] here): not comparable.
        if (
            resume_from_checkpoint
            and getattr(self.model, "config", None) is not None
            and not self.args.deepspeed
        ):
            check_checkpoint_matches_model(resume_from_checkpoint, self.model)
        try:
            return super().train(resume_from_checkpoint, *args, **kwargs)
        finally:
            # The Trainer leaves it set when training stops with an error; evaluations after it are not
            # model selection (see `_check_selection_metric`).
            self.is_in_train = False

    def _save_checkpoint(self, model, trial):
        # The Trainer writes straight into checkpoint-N: a failure part-way must not leave a folder that
        # looks resumable, nor an error that says nothing about the disk.
        folder = os.path.join(
            self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        )
        existed = os.path.exists(folder)
        try:
            super()._save_checkpoint(model, trial)
        except Exception as err:
            try:
                check_checkpoint(folder, getattr(self.args, "expects_optimizer_files", True))
            except IncompleteCheckpointError:
                removed = not existed and self.args.should_save
                if removed:
                    shutil.rmtree(folder, ignore_errors=True)
                raise checkpoint_save_error(folder, err, removed) from err
            raise  # the checkpoint is whole: the error came after it (a push, the rotation)
        if self.args.should_save:
            _write_json(os.path.join(folder, TRAINER_STATE_FILE), dataclasses.asdict(self.state))

    def save_state(self) -> None:
        """`Trainer.save_state` as strict JSON: an undefined metric (NaN) in the log history is null."""
        if self.is_world_process_zero():
            _write_json(
                os.path.join(self.args.output_dir, TRAINER_STATE_FILE), dataclasses.asdict(self.state)
            )

    def save_metrics(self, split, metrics, combined=True) -> None:
        """`Trainer.save_metrics` as strict JSON: an undefined metric (NaN, e.g. the EER of a one-class
        split) is written as null, not as the `NaN` that JSON parsers other than Python's refuse."""
        super().save_metrics(split, strict_json(metrics), combined)

    def _get_train_sampler(self, train_dataset=None):
        # Group by the `duration` column with our sampler: the Trainer's LengthGroupedSampler caps its
        # sorted mega-batches at a quarter of the data and pads ~1.24x at batch 64 on IEMOCAP-like
        # spreads, against ~1.08x here, with batches that still change every epoch
        # (benchmarks/bench_padding.py).
        dataset = self.train_dataset if train_dataset is None else train_dataset
        column = self.args.length_column_name
        grouped = self.args.train_sampling_strategy == "group_by_length"
        if not grouped or not hasattr(dataset, "column_names"):
            return super()._get_train_sampler(train_dataset)
        if column not in dataset.column_names:
            raise ValueError(
                f"train_sampling_strategy=group_by_length groups by the {column!r} column, which the training "
                f"dataset lacks (columns: {dataset.column_names}); add durations in seconds "
                "(turbo_hf.audio.audio_duration) or set --length_column_name"
            )
        return DurationGroupedSampler(
            # Read past the split's transform (DecodeAndCrop), which would decode every row's audio.
            dataset.with_format(None)[column],
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            seed=self.args.seed,
            num_processes=self.args.world_size,
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        mode = "train" if model.training else "eval"
        rows = outputs.logits.shape[0]
        if mode == "eval":
            self._eval_rows += rows
        for name in _LOSS_PARTS:
            value = outputs.get(name)
            if value is not None:
                # Kept on device: no host sync and no collective per step; reduced when logged.
                value = value.detach().float()
                self._loss_parts[mode][name].append(value * rows if mode == "eval" else value)
        loss = outputs.loss
        return (loss, outputs) if return_outputs else loss

    def _mean_over_processes(self, values: list[torch.Tensor]) -> float:
        """Mean of this process's recorded values, averaged over processes with one collective."""
        local = torch.stack(values).mean()
        return self.accelerator.reduce(local, reduction="mean").item()

    def _row_weighted_mean_over_processes(self, values: list[torch.Tensor]) -> float:
        """Sum of row-weighted batch values over the sum of rows, over all processes."""
        weighted = torch.stack(values).sum()
        totals = torch.stack([weighted, torch.tensor(float(self._eval_rows), device=weighted.device)])
        totals = self.accelerator.reduce(totals, reduction="sum")
        return (totals[0] / totals[1]).item()

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Evaluation parts go into the evaluation metrics instead (see `evaluation_loop`).
        if self.model.training:
            parts = self._loss_parts["train"]
            logs = {
                **logs,
                **{name: self._mean_over_processes(values) for name, values in parts.items() if values},
            }
            parts.clear()
            if "learning_rate" in logs and self._group_indices is not None and self.optimizer:
                logs.update(self._learning_rates(logs["learning_rate"]))
        super().log(logs, start_time)

    def _learning_rates(self, first_group_rate: float) -> dict[str, float]:
        """The heads' (`learning_rate`) and the encoders' (`encoder_learning_rate`) current rates.

        The Trainer logs the first param group's rate; schedulers scale every group's initial rate by
        one factor, so the other groups' rates at the same moment follow from it.
        """
        head_index, encoder_index = self._group_indices
        groups = self.optimizer.param_groups
        initial = [group.get("initial_lr", group["lr"]) for group in groups]
        if initial[0] > 0:
            factor = first_group_rate / initial[0]
            return {
                "learning_rate": initial[head_index] * factor,
                "encoder_learning_rate": initial[encoder_index] * factor,
            }
        # A first group at rate 0 (e.g. encoder_learning_rate=0) carries no factor: read the groups.
        return {
            "learning_rate": groups[head_index]["lr"],
            "encoder_learning_rate": groups[encoder_index]["lr"],
        }

    def evaluation_loop(
        self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
    ):
        self._loss_parts["eval"].clear()
        self._eval_rows = 0
        output = super().evaluation_loop(
            dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix
        )
        for name, values in self._loss_parts["eval"].items():
            if values:
                output.metrics[f"{metric_key_prefix}_{name}"] = self._row_weighted_mean_over_processes(values)
        self._loss_parts["eval"].clear()
        self._eval_rows = 0
        if self.is_in_train and metric_key_prefix == "eval":
            self._check_selection_metric(output.metrics, output.label_ids)
        return output

    def _check_selection_metric(self, metrics: dict[str, float], label_ids) -> None:
        """A NaN `metric_for_best_model` can never be the best: say so at the first evaluation instead of
        training on and silently keeping the last step."""
        name = self.args.metric_for_best_model
        if name is None:
            return
        key = name if name.startswith("eval_") else f"eval_{name}"
        value = metrics.get(key)
        if not (isinstance(value, float) and math.isnan(value)):
            return
        present = "none"
        if label_ids is not None and not isinstance(label_ids, (tuple, list)):
            id2label = getattr(getattr(self.model, "config", None), "id2label", None) or {}
            present = ", ".join(str(id2label.get(int(i), int(i))) for i in np.unique(np.asarray(label_ids)))
        raise ValueError(
            f"metric_for_best_model={name!r} is undefined (NaN) on the evaluation split at step "
            f"{self.state.global_step}, so no checkpoint can be chosen on it. Its labels hold the class(es) "
            f"{present}: EER, for one, is undefined unless both classes occur (a NaN loss, a diverged run, "
            "makes every metric NaN). Select on a metric defined there (--metric_for_best_model ua), or give "
            "the evaluation split rows of every class."
        )

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        optimizer = super().create_optimizer(model)
        encoder_lr = getattr(self.args, "encoder_learning_rate", None)
        if encoder_lr is None:
            return optimizer
        opt_model = self.model if model is None else model
        encoder_params = {id(p) for n, p in opt_model.named_parameters() if n.startswith(_ENCODER_PREFIXES)}
        # Split each (decay / no-decay) group into an encoder part and a head part. The order is part
        # of the optimizer state in checkpoints: keep it, or older checkpoints no longer resume.
        groups, head_index, encoder_index = [], None, None
        for group in optimizer.param_groups:
            for is_encoder in (True, False):
                params = [p for p in group["params"] if (id(p) in encoder_params) == is_encoder]
                if params:
                    if is_encoder and encoder_index is None:
                        encoder_index = len(groups)
                    if not is_encoder and head_index is None:
                        head_index = len(groups)
                    groups.append(
                        {**group, "params": params, "lr": encoder_lr if is_encoder else group["lr"]}
                    )
        if head_index is not None and encoder_index is not None:
            self._group_indices = (head_index, encoder_index)
        optimizer.param_groups.clear()
        for group in groups:
            optimizer.add_param_group(group)
        return optimizer


__all__ = ["TurboTrainer", "TurboTrainingArguments"]
