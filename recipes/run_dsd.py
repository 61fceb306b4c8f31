"""Device-directed speech detection (or any audio+text classification) from a manifest.

    accelerate launch recipes/run_dsd.py --manifest data/dsd.csv --output_dir runs/dsd --loss_mode turbo

The manifest (CSV, TSV or JSONL) has columns audio, text, label and split (train / validation /
test). The best checkpoint by validation EER is scored on test: ACC and EER (binary), WA / UA / macro-F1.
"""

from turbo_hf.arguments import (
    RECIPE_TRAINING_DEFAULTS,
    DataArguments,
    ManifestArguments,
    ModelArguments,
    parse_recipe_arguments,
)
from turbo_hf.experiment import run_manifest, setup_logging
from turbo_hf.trainer import TurboTrainingArguments

DSD_DEFAULTS = {
    **RECIPE_TRAINING_DEFAULTS,
    "metric_for_best_model": "eer",
}


def main() -> None:
    model_args, data_args, manifest_args, training_args = parse_recipe_arguments(
        (ModelArguments, DataArguments, ManifestArguments, TurboTrainingArguments), DSD_DEFAULTS
    )
    setup_logging(training_args)
    metrics = run_manifest(model_args, data_args, manifest_args, training_args)
    if training_args.process_index == 0:
        print(metrics)


if __name__ == "__main__":
    main()
