"""`turbo-hf`: classify audio + transcripts, or score a labelled manifest, from the command line.

    turbo-hf predict MODEL --audio a.wav --text "the transcript"            # JSON: labels, transcript
    turbo-hf predict MODEL --manifest m.csv --output predictions.jsonl     # one JSON line per row
    turbo-hf predict MODEL --manifest m.csv --split test                    # only the test rows
    turbo-hf evaluate MODEL --manifest m.csv --split test                   # WA, UA, macro F1 (+ ACC, EER),
                                                                           # confusion matrix, per-class recall
    turbo-hf export MODEL --onnx OUT_DIR                                    # ONNX graph + processor

Everything runs through the "audio-text-classification" pipeline. Parsing, `--help` and usage errors
import neither torch nor transformers (`benchmarks/bench_cli_startup.py`): each command imports what
it needs when it runs. Bad rows (manifest errors, audio
that cannot be decoded) stop the run with exit code 2 and one line naming file:line, unless
`--skip-bad-rows` is given: then they are left out, counted and listed at the end on stderr.

Every bad input ends the same way: one line `turbo-hf COMMAND: error: ...` on stderr and exit code 2.
Flag values are checked as they are parsed (before torch is imported), `--device` before the model
is loaded; `--debug` shows the traceback of such an error instead. Anything else is a bug: traceback,
exit code 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from .data.manifest_files import ManifestError
from .data.manifest_options import ManifestOptions
from .json_files import dumps
from .pipeline_options import DEFAULT_MAX_DURATION, check_device, check_max_duration, check_positive_int

EXIT_BAD_INPUT = 2
# Added to each manifest row by the loader so that a row that fails later is still named file:line.
_LINE_COLUMN = "_manifest_line"
_SKIPPED_LISTED = 20


class UserError(Exception):
    """A problem with the command's inputs: reported as one line, exit code 2, no traceback."""


# Exceptions of modules that import torch, which this module must not import: such an exception
# cannot have been raised unless its module was imported, so it is looked up in sys.modules.
_INPUT_ERRORS_ELSEWHERE = {"audio": "AudioDecodingError", "export": "OnnxExportError"}


def _input_errors() -> tuple[type[Exception], ...]:
    """The exceptions that the toolkit raises for bad input (not for bugs): one line, exit code 2."""
    errors = [UserError, ManifestError]
    for module, name in _INPUT_ERRORS_ELSEWHERE.items():
        loaded = sys.modules.get(f"{__package__}.{module}")
        if loaded is not None:
            errors.append(getattr(loaded, name))
    return tuple(errors)


@contextmanager
def _user_input(what: str) -> Iterator[None]:
    """Errors raised while reading what the user named (a model, a file) are that input's fault: they
    become a UserError saying what was being read. Only those steps are wrapped, so that the same
    exception types raised anywhere else keep their traceback."""
    try:
        yield
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise UserError(f"{what}: {err}") from err


# -- argument parsing ----------------------------------------------------------------------------------
class _ArgumentParser(argparse.ArgumentParser):
    """Usage errors as one line, `turbo-hf predict: error: ...`, and exit code 2 (`--help` has the usage)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        return check_positive_int(int(text), "the value")
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def _max_duration(text: str) -> float | None:
    if text.strip().lower() == "none":
        return None
    try:
        return check_max_duration(float(text))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of seconds, or 'none' to keep whole clips; got {text!r}"
        ) from None


def _output_file(text: str) -> str:
    """A file that can be written: checked before the run, so that its results are not lost at the end."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file to write")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} does not exist")
    if not os.access(path if path.exists() else path.parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be written (permission denied)")
    return text


# What a column flag means on the command line beyond its ManifestOptions help.
_COLUMN_NOTES = {"text_column": " Without this flag the column may be absent with --asr-model."}


def _add_column_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """`--audio-column` ... from ManifestOptions; None when not given, so that `_Manifest` knows."""
    for option in dataclasses.fields(ManifestOptions):
        if option.name in names:
            note = _COLUMN_NOTES.get(option.name, "")
            parser.add_argument(
                "--" + option.name.replace("_", "-"),
                help=f"{option.metadata['help']} Default: {option.default}.{note}",
            )


def _add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="Saved Turbo model: a folder written by save_pretrained, or a hub id.")
    parser.add_argument(
        "--manifest", help="CSV / TSV / JSONL manifest (columns audio, text[, label, id, split])."
    )
    _add_column_flags(parser, "audio_column", "text_column", "id_column", "split_column")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="Rows per model call.")
    parser.add_argument(
        "--max-duration",
        type=_max_duration,
        default=DEFAULT_MAX_DURATION,
        metavar="SECONDS",
        help=f"Longer clips are classified by their centre this many seconds, as evaluation crops "
        f"(default: {DEFAULT_MAX_DURATION:g}); 'none' keeps whole clips, at a cost that grows with the "
        "square of their length. The clips cropped are counted on stderr.",
    )
    parser.add_argument(
        "--asr-model",
        help="Speech recognizer (hub id or folder) that transcribes rows without a transcript.",
    )
    parser.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (default: first accelerator).")
    parser.add_argument(
        "--skip-bad-rows",
        action="store_true",
        help="Leave out rows that cannot be read (reported at the end) instead of stopping.",
    )
    parser.add_argument("--no-progress", action="store_true", help="No progress bar.")


def _add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        help="On an input error, show its traceback (for a bug report) instead of one line.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="turbo-hf", description="Turbo audio + text classification.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser(
        "predict", help="Classify one (audio, text) pair or every row of a manifest."
    )
    _add_common_arguments(predict)
    predict.add_argument("--audio", help="One audio file to classify (instead of --manifest).")
    predict.add_argument("--text", help="Transcript of --audio (or give --asr-model).")
    predict.add_argument(
        "--top-k",
        type=_positive_int,
        help="Labels per prediction, best first: --audio prints this many (default: all); each manifest "
        "row gets a 'labels' list of this many beside its best 'label' and 'score'.",
    )
    predict.add_argument(
        "--output", type=_output_file, help="JSONL file for manifest predictions (default: stdout)."
    )
    predict.add_argument("--split", help="Rows of this split only (default: every row, in file order).")
    predict.add_argument(
        "--all-scores", action="store_true", help="Add every label's score to each manifest prediction."
    )
    _add_debug_flag(predict)
    predict.set_defaults(run=_predict)

    evaluate = commands.add_parser("evaluate", help="Score the model on a labelled manifest.")
    _add_common_arguments(evaluate)
    _add_column_flags(evaluate, "label_column")
    evaluate.add_argument("--split", help="Rows of this split only (needed when the manifest has splits).")
    evaluate.add_argument("--output", type=_output_file, help="Also write the metrics to this JSON file.")
    _add_debug_flag(evaluate)
    evaluate.set_defaults(run=_evaluate)
    export = commands.add_parser(
        "export", help="Write an ONNX graph of a saved model with its processor (runs without torch)."
    )
    export.add_argument("model", help="Saved Turbo model folder (save_pretrained, with its processor).")
    export.add_argument("--onnx", required=True, metavar="OUT_DIR", help="Folder to write the graph into.")
    export.add_argument("--opset", type=_positive_int, help="ONNX opset version (default: the exporter's).")
    export.add_argument("--overwrite", action="store_true", help="Write into a folder that is not empty.")
    _add_debug_flag(export)
    export.set_defaults(run=_export)
    return parser


# -- shared steps ----------------------------------------------------------------------------------------
def _check_device(device: str | None):
    """`--device` as a torch.device, refused (one line) unless this machine has it."""
    try:
        return check_device(device, "--device")
    except ValueError as err:  # the message names the flag
        raise UserError(str(err)) from err


def _load_pipeline(args: argparse.Namespace):
    """The pipeline of `args.model` on `--device`, with its recognizer, once every flag is checked."""
    device = _check_device(args.device)
    import transformers

    from .modeling_turbo import TurboForAudioTextClassification
    from .pipeline import TASK, register_pipeline
    from .processing_turbo import TurboProcessor

    register_pipeline()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with _user_input(f"cannot load model {args.model}"):
        # Loaded here, not by transformers.pipeline: it turns a loading error into a traceback quoted
        # in a ValueError. First, as the recognizer takes longer to load.
        model = TurboForAudioTextClassification.from_pretrained(args.model)
        processor = TurboProcessor.from_pretrained(args.model)
    asr = None
    if args.asr_model is not None:
        with _user_input(f"cannot load --asr-model {args.asr_model}"):
            asr = transformers.pipeline("automatic-speech-recognition", model=args.asr_model, device=device)
    with _user_input(f"cannot load model {args.model}"):
        pipe = transformers.pipeline(TASK, model=model, processor=processor, asr_model=asr, device=device)
    # Whether the limit leaves the encoder enough samples depends on the model.
    with _user_input("argument --max-duration"):
        pipe.crop_length(args.max_duration)
    return pipe


def _report_cropped(count: int, args: argparse.Namespace) -> None:
    if count:
        print(
            f"{count} clip(s) longer than --max-duration {args.max_duration:g} s were classified by their "
            "centre (--max-duration none keeps whole clips)",
            file=sys.stderr,
        )


class _Manifest:
    """The manifest rows of `--split` (each with its file line) and the rows the loader left out.

    The loader drops the other splits before checking any row, so that a broken train file neither
    stops `evaluate --split test` nor shows up among its skipped rows.
    """

    def __init__(
        self, args: argparse.Namespace, labels: list[str] | None = None, split_required: bool = False
    ):
        self.path = Path(args.manifest)
        self.cropped = 0  # rows longer than --max-duration, classified by their centre
        given = {
            option.name: getattr(args, option.name)
            for option in dataclasses.fields(ManifestOptions)
            if getattr(args, option.name, None) is not None
        }
        from datasets import DatasetDict

        from .data.manifest import load_manifest

        options = ManifestOptions(**given, on_bad_row="skip" if args.skip_bad_rows else "raise")
        if labels is None:
            options.label_column = None  # predict: the manifest's labels are not read
        if args.split is None and not split_required:
            # Without --split, predict keeps every row in file order, while evaluate must not mix splits.
            options.split_column = None
        try:
            self.data, self.skipped = load_manifest(
                self.path,
                options,
                labels=labels,
                splits=args.split,
                # With a recognizer, rows without a transcript are transcribed; a column named with
                # --text-column stays required, so that a typo in it is not silently ignored.
                text_optional=args.asr_model is not None and args.text_column is None,
                compute_duration=False,
                line_column=_LINE_COLUMN,
                return_skipped=True,
            )
        except OSError as err:
            raise UserError(str(err)) from err
        if isinstance(self.data, DatasetDict):
            if args.split is None:
                raise UserError(
                    f"{self.path}: the manifest holds splits {sorted(self.data)}; choose one with --split"
                )
            (self.data,) = self.data.values()

    def where(self, row: dict[str, Any]) -> str:
        return f"{self.path}:{row[_LINE_COLUMN]}"


def _classify_rows(
    pipe, manifest: _Manifest, args: argparse.Namespace
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], str | None]]:
    """Yield (row, every label with its score, best first; transcript made by ASR or None) per
    readable manifest row.

    Audio is decoded here (through the one audio path) so that a bad file is pinned to its line; the
    pipeline then featurizes and classifies the decoded rows in batches.
    """
    from tqdm.auto import tqdm

    from .audio import AudioDecodingError, check_long_enough, load_window

    rate = pipe.sampling_rate
    limit = pipe.crop_length(args.max_duration)
    chunk = args.batch_size * 4
    progress = tqdm(total=len(manifest.data), unit="row", disable=args.no_progress, file=sys.stderr)
    with progress:
        for start in range(0, len(manifest.data), chunk):
            rows, inputs = [], []
            for position in range(start, min(start + chunk, len(manifest.data))):
                row = manifest.data[position]
                try:
                    waveform, length = load_window(row["audio"], rate, limit)
                    check_long_enough(waveform, pipe.model.min_audio_samples, rate)
                except AudioDecodingError as err:
                    if not args.skip_bad_rows:
                        raise UserError(
                            f"{manifest.where(row)}: {err}; pass --skip-bad-rows to leave bad rows out"
                        ) from err
                    manifest.skipped.append((row[_LINE_COLUMN], str(err)))
                    continue
                text = row["text"] if row["text"] or pipe.asr is None else None
                rows.append(row)
                inputs.append({"audio": waveform, "sampling_rate": rate, "text": text})
                manifest.cropped += limit is not None and length > limit
            outputs = pipe(inputs, batch_size=args.batch_size, max_duration=args.max_duration)
            for row, model_input, output in zip(rows, inputs, outputs):
                transcribed = model_input["text"] is None
                yield row, output["labels"], output["transcript"] if transcribed else None
            progress.update(min(chunk, len(manifest.data) - start))


def _report_skipped(manifest: _Manifest, args: argparse.Namespace) -> None:
    _report_cropped(manifest.cropped, args)
    if not manifest.skipped:
        return
    skipped = sorted(manifest.skipped)
    print(f"skipped {len(skipped)} bad row(s) of {manifest.path}:", file=sys.stderr)
    for line, reason in skipped[:_SKIPPED_LISTED]:
        print(f"  {manifest.path}:{line}: {reason}", file=sys.stderr)
    if len(skipped) > _SKIPPED_LISTED:
        print(f"  ... and {len(skipped) - _SKIPPED_LISTED} more", file=sys.stderr)


def _open_output(path: str | None):
    if path is None:
        return nullcontext(sys.stdout)
    with _user_input(f"cannot write --output {path}"):
        return open(path, "w", encoding="utf-8")


def _check_files(args: argparse.Namespace) -> None:
    """The files named on the command line, checked before the model loads (seconds) rather than after."""
    manifest = getattr(args, "manifest", None)
    for flag, path in (("--manifest", manifest), ("--audio", getattr(args, "audio", None))):
        if path is None:
            continue
        if path == "-":
            raise UserError(f"{flag} -: reading from standard input is not supported; pass a file")
        if os.path.isdir(path):
            raise UserError(f"{flag} {path} is a folder; pass a file")
        if not os.path.isfile(path):
            raise UserError(f"{flag} {path}: file not found")
    output = getattr(args, "output", None)
    if output is not None and manifest is not None and os.path.exists(output):
        if os.path.samefile(output, manifest):
            raise UserError(
                f"--output {output} is the --manifest file: it would be overwritten; pick another path"
            )


# -- commands ----------------------------------------------------------------------------------------------
def _predict(args: argparse.Namespace) -> None:
    if (args.audio is None) == (args.manifest is None):
        raise UserError("predict needs exactly one of --audio (one file) or --manifest (many rows)")
    if args.audio is not None and args.text is None and args.asr_model is None:
        raise UserError("predict --audio needs --text, or --asr-model to transcribe the audio")
    _check_files(args)
    pipe = _load_pipeline(args)
    if args.audio is not None:
        from .audio import load_window

        # Decoded (and cropped) here, as manifest rows are, so that a clip that is cropped can be counted.
        limit = pipe.crop_length(args.max_duration)
        waveform, length = load_window(args.audio, pipe.sampling_rate, limit)
        example = {"audio": waveform, "sampling_rate": pipe.sampling_rate, "text": args.text}
        result = pipe(example, top_k=args.top_k, max_duration=args.max_duration)
        print(dumps(result, indent=2, ensure_ascii=False))
        _report_cropped(int(limit is not None and length > limit), args)
        return

    manifest = _Manifest(args)
    with _open_output(args.output) as output:
        for row, labels, transcript in _classify_rows(pipe, manifest, args):
            record = {"id": row["id"], "label": labels[0]["label"], "score": labels[0]["score"]}
            if args.top_k is not None:
                record["labels"] = labels[: args.top_k]
            if args.all_scores:
                record["scores"] = {item["label"]: item["score"] for item in labels}
            if transcript is not None:
                record["transcript"] = transcript
            output.write(dumps(record, ensure_ascii=False) + "\n")
    _report_skipped(manifest, args)


def _evaluate(args: argparse.Namespace) -> None:
    if args.manifest is None:
        raise UserError("evaluate needs --manifest, a labelled CSV / TSV / JSONL file")
    _check_files(args)
    import numpy as np

    from .metrics import confusion_matrix, confusion_report, score_probabilities
    from .pipeline import label_names

    pipe = _load_pipeline(args)
    labels = label_names(pipe.model.config)
    manifest = _Manifest(args, labels=labels, split_required=True)

    label2id = {name: index for index, name in enumerate(labels)}
    references, probabilities = [], []
    for row, scores, _ in _classify_rows(pipe, manifest, args):
        references.append(row["label"])
        row_probabilities = np.zeros(len(labels))
        for item in scores:
            row_probabilities[label2id[item["label"]]] = item["score"]
        probabilities.append(row_probabilities)
    if not references:
        raise UserError(f"{manifest.path}: no readable rows to evaluate")
    references, probabilities = np.array(references), np.stack(probabilities)
    metrics = score_probabilities(references, probabilities)
    metrics["num_examples"] = len(references)
    # Scores first, then the matrix and per-class recall (UA is the mean of the recalls shown).
    errors = confusion_matrix(references, probabilities.argmax(axis=-1), num_classes=len(labels))
    metrics.update(confusion_report(errors, labels))
    text = dumps(metrics, indent=2)  # strict JSON: an undefined EER (one class) is null
    print(text)
    if args.output:
        with _user_input(f"cannot write --output {args.output}"):
            Path(args.output).write_text(text + "\n", encoding="utf-8")
    _report_skipped(manifest, args)


def _export(args: argparse.Namespace) -> None:
    from .export import export_onnx

    info = export_onnx(args.model, args.onnx, opset=args.opset, overwrite=args.overwrite)
    print(dumps(info, indent=2, ensure_ascii=False))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `turbo-hf` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except _input_errors() as err:
        if args.debug:
            raise
        # The loader's hint names its Python argument; on the command line it is a flag.
        message = str(err).replace("pass on_bad_row='skip'", "pass --skip-bad-rows")
        # One line, whatever the message: transformers' loading errors span several.
        message = "; ".join(line.strip() for line in message.splitlines() if line.strip())
        print(f"turbo-hf {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
