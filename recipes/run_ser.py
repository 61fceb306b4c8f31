"""Speech emotion recognition on IEMOCAP with Turbo, or the vanilla / cross baselines.

    accelerate launch recipes/run_ser.py --iemocap_root IEMOCAP_full_release --output_dir runs/ser \
        --loss_mode turbo --fold 0
    accelerate launch recipes/run_ser.py recipes/configs/iemocap_paper.json

Per fold: the checkpoint with the best validation UA is kept and scored on the test speaker(s) (WA, UA).
With `--fold all`, every fold runs in turn and output_dir gets summary.json and summary.md (mean ± std).
"""

from turbo_hf.arguments import (
    RECIPE_TRAINING_DEFAULTS,
    DataArguments,
    IemocapArguments,
    ModelArguments,
    parse_recipe_arguments,
)
from turbo_hf.experiment import run_iemocap, setup_logging
from turbo_hf.trainer import TurboTrainingArguments

SER_DEFAULTS = {
    **RECIPE_TRAINING_DEFAULTS,
    "metric_for_best_model": "ua",
}


def main() -> None:
    model_args, data_args, iemocap_args, training_args = parse_recipe_arguments(
        (ModelArguments, DataArguments, IemocapArguments, TurboTrainingArguments), SER_DEFAULTS
    )
    setup_logging(training_args)
    result = run_iemocap(model_args, data_args, iemocap_args, training_args)
    if training_args.process_index == 0:
        print({key: value for key, value in result.items() if key != "folds"})


if __name__ == "__main__":
    main()
