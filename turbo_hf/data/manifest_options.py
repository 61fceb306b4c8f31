"""ManifestOptions: which manifest columns hold what, and what a bad row does.

Standard library only, so that `turbo-hf --help` builds its column flags from it without importing
`datasets`, transformers or torch. `turbo_hf.data.manifest` re-exports it beside `load_manifest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_ON_BAD_ROW = ("raise", "skip")


@dataclass
class ManifestOptions:
    """Which manifest columns hold what, and what a bad row does.

    `load_manifest` takes them, the recipes' `ManifestArguments` extends them and `turbo-hf` makes its
    flags from them, so each option and its default is written once.
    """

    audio_column: str = field(
        default="audio",
        metadata={"help": "Column of audio paths, relative to the manifest's folder or absolute."},
    )
    text_column: str = field(default="text", metadata={"help": "Column of transcripts."})
    label_column: str | None = field(
        default="label", metadata={"help": "Column of class names (None: unlabelled, for prediction)."}
    )
    split_column: str | None = field(
        default="split",
        metadata={"help": "Column of split names: train, validation (or dev / valid / val), test."},
    )
    id_column: str | None = field(
        default="id", metadata={"help": "Column of utterance ids (without it: <manifest stem>:<line>)."}
    )
    on_bad_row: str = field(
        default="raise",
        metadata={
            "help": "'raise': stop at the first bad row (missing or unreadable audio, unknown label, ...), "
            "naming its file line; 'skip': leave bad rows out, counted and logged with their lines."
        },
    )

    def __post_init__(self):
        if self.on_bad_row not in _ON_BAD_ROW:
            raise ValueError(f"on_bad_row must be 'raise' or 'skip', got {self.on_bad_row!r}")


__all__ = ["ManifestOptions"]
