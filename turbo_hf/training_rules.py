"""What the training arguments accept, as data (`TRAINING_FIELD_RULES`, with the `FieldRule`s of
`configuration_rules`), and the combinations that would train nothing: checked by
`TurboTrainingArguments.__post_init__`, so that `--learning_rate nan` or `--num_train_epochs 0` are
refused when the flags are parsed, not by the optimizer or the sampler after the data and encoders
have loaded (or, for zero steps, not at all)."""

from __future__ import annotations

import math
from typing import Any

from .configuration_rules import FieldRule, integer, number

_MAX_SEED = 2**32 - 1  # numpy's legacy seeding, which set_seed calls, takes no more


def _seed(optional: bool = False) -> FieldRule:
    expected = "an integer in [0, 2**32 - 1]"
    return FieldRule(
        "integer",
        f"None or {expected}" if optional else expected,
        lambda value: 0 <= value <= _MAX_SEED,
        optional,
    )


def _whole_or_fraction(value: float) -> bool:
    # transformers reads warmup_steps >= 1 as a step count and truncates it: 2.5 would silently be 2.
    return value >= 0 and (value < 1 or value == int(value))


# Fields of TrainingArguments (and of TurboTrainingArguments) whose bad values transformers, torch or
# numpy would only refuse once training starts, if at all.
TRAINING_FIELD_RULES: dict[str, FieldRule] = {
    "learning_rate": number("> 0", lambda value: value > 0),
    # 0 freezes the encoders while the heads train.
    "encoder_learning_rate": number(">= 0", lambda value: value >= 0, optional=True),
    "weight_decay": number(">= 0", lambda value: value >= 0),
    "adam_beta1": number("in [0, 1)", lambda value: 0 <= value < 1),
    "adam_beta2": number("in [0, 1)", lambda value: 0 <= value < 1),
    "adam_epsilon": number(">= 0", lambda value: value >= 0),
    "max_grad_norm": number(">= 0", lambda value: value >= 0),
    "warmup_steps": FieldRule(
        "number",
        "a finite number >= 0: a whole number of steps, or a fraction in [0, 1) of the training steps",
        _whole_or_fraction,
    ),
    "num_train_epochs": FieldRule("number", "a finite number"),
    "max_steps": FieldRule("integer", "an integer"),
    "per_device_train_batch_size": integer(1),
    "per_device_eval_batch_size": integer(1),
    "gradient_accumulation_steps": integer(1),
    "dataloader_num_workers": integer(0),
    "seed": _seed(),
    "data_seed": _seed(optional=True),
    "early_stopping_patience": FieldRule("integer", "None or an integer >= 1", lambda v: v >= 1, True),
    "early_stopping_threshold": number(">= 0", lambda value: value >= 0),
}


def check_training_fields(args: Any) -> None:
    """Check (and normalise: ints given for numbers become floats) every field of `args` that has a rule;
    the error names the flag, the value and what was expected."""
    for name, rule in TRAINING_FIELD_RULES.items():
        if not hasattr(args, name):
            continue
        try:
            setattr(args, name, rule.check(getattr(args, name), f"--{name}"))
        except TypeError as err:  # a wrong type is a bad value as far as an argument is concerned
            raise ValueError(str(err)) from None


def _flag_value(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


def check_training_steps(args: Any) -> None:
    """Refuse settings under which the Trainer takes no step, yet saves and scores the untrained model.

    transformers 5.24 counts `num_train_epochs` only while `max_steps` is negative (the default -1); a
    `max_steps` of 0 is taken as the step count, which gives one step at learning rate 0.
    """
    if args.max_steps == 0:
        raise ValueError(
            "no training steps: --max_steps 0 trains nothing (transformers reads 0 as the step count, not "
            "as 'use --num_train_epochs'); pass a positive --max_steps, or -1 (the default) to train for "
            "--num_train_epochs"
        )
    if args.max_steps < 0 and not (math.isfinite(args.num_train_epochs) and args.num_train_epochs > 0):
        raise ValueError(
            f"no training steps: --num_train_epochs {_flag_value(args.num_train_epochs)} (with --max_steps "
            f"{args.max_steps}, epochs decide); pass --num_train_epochs > 0 or a positive --max_steps"
        )


def check_early_stopping(args: Any) -> None:
    """Early stopping watches `metric_for_best_model` at each evaluation and keeps the best checkpoint."""
    patience = getattr(args, "early_stopping_patience", None)
    if patience is None:
        return
    evaluates = str(getattr(args.eval_strategy, "value", args.eval_strategy)) != "no"
    if not (evaluates and args.load_best_model_at_end and args.metric_for_best_model is not None):
        raise ValueError(
            f"--early_stopping_patience {patience} needs evaluations to watch and the best checkpoint to go "
            "back to: an --eval_strategy other than no, a matching --save_strategy, "
            "--load_best_model_at_end true and a --metric_for_best_model (e.g. ua); got eval_strategy="
            f"{getattr(args.eval_strategy, 'value', args.eval_strategy)!r}, load_best_model_at_end="
            f"{args.load_best_model_at_end}, metric_for_best_model={args.metric_for_best_model!r}"
        )


__all__ = ["TRAINING_FIELD_RULES", "check_early_stopping", "check_training_fields", "check_training_steps"]
