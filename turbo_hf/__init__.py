"""turbo_hf: fine-tune audio+text classifiers with Turbo contrastive learning.

`import turbo_hf` registers TurboConfig / TurboForAudioTextClassification / TurboProcessor with
transformers' Auto classes, so `AutoModel.from_pretrained(saved_dir)` works without
`trust_remote_code`, and registers the "audio-text-classification" pipeline task.

The import itself is light: the public names load on first use (`turbo_hf.TurboConfig`, `from
turbo_hf import ...`), and registration, which needs transformers and torch, runs as soon as
transformers is there: at once if it is imported already, else right after transformers' own import
finishes (and any import of a turbo_hf module in flight with it). So `turbo-hf --help` starts without
importing torch or transformers, while `import turbo_hf` followed by transformers' factories works as
it always did. `register()` does it explicitly.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Each public name and the module that defines it.
_PUBLIC_NAMES = {
    "TurboConfig": "configuration_turbo",
    "TurboForAudioTextClassification": "modeling_turbo",
    "TurboClassifierOutput": "modeling_turbo",
    "TurboProcessor": "processing_turbo",
    "DataCollatorForAudioText": "collator",
    "DecodeAndCrop": "collator",
    "AudioTextClassificationPipeline": "pipeline",
    "TurboTrainer": "trainer",
    "TurboTrainingArguments": "trainer",
    "load_iemocap": "data.iemocap",
    "load_manifest": "data.manifest",
}

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time `__getattr__` loads these
    from .collator import DataCollatorForAudioText, DecodeAndCrop
    from .configuration_turbo import TurboConfig
    from .data.iemocap import load_iemocap
    from .data.manifest import load_manifest
    from .modeling_turbo import TurboClassifierOutput, TurboForAudioTextClassification
    from .pipeline import AudioTextClassificationPipeline
    from .processing_turbo import TurboProcessor
    from .trainer import TurboTrainer, TurboTrainingArguments


def register() -> None:
    """Register Turbo with transformers: AutoConfig / AutoModel / AutoProcessor, and the
    "audio-text-classification" pipeline task. Idempotent; `import turbo_hf` arranges it already."""
    from transformers import AutoConfig, AutoModel, AutoProcessor

    from .configuration_turbo import TurboConfig
    from .modeling_turbo import TurboForAudioTextClassification
    from .pipeline import register_pipeline
    from .processing_turbo import TurboProcessor

    # exist_ok: re-importing (e.g. importlib.reload in notebooks) must not fail.
    AutoConfig.register(TurboConfig.model_type, TurboConfig, exist_ok=True)
    AutoModel.register(TurboConfig, TurboForAudioTextClassification, exist_ok=True)
    AutoProcessor.register(TurboConfig, TurboProcessor, exist_ok=True)
    register_pipeline()


def __getattr__(name: str) -> Any:
    module = _PUBLIC_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    register()  # idempotent: whoever takes a name from the package gets the registered package
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC_NAMES})


class _RegisterWhenTransformersLoads(importlib.abc.MetaPathFinder):
    """Runs `register()` once transformers has been imported and no import of transformers or of a
    turbo_hf module is in flight, then leaves `sys.meta_path`.

    `register()` imports turbo_hf's model modules; run from inside a half-executed one (say
    `modeling_turbo`, which imports transformers before defining its classes), it would fail. So this
    finder hands out the usual module specs, with loaders that count the executions under way.
    """

    def __init__(self) -> None:
        self.in_flight = 0

    def find_spec(self, fullname: str, path: Any = None, target: Any = None):
        if fullname != "transformers" and not fullname.startswith(__name__ + "."):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find_spec(fullname, path, target) if find_spec is not None else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _CountedLoader(spec.loader, self)
                return spec
        return None

    def finished(self) -> None:
        if self.in_flight == 0 and "transformers" in sys.modules and self in sys.meta_path:
            sys.meta_path.remove(self)
            register()


class _CountedLoader(importlib.abc.Loader):
    """A module's own loader, counted by `_RegisterWhenTransformersLoads` while it executes."""

    def __init__(self, loader: importlib.abc.Loader, finder: _RegisterWhenTransformersLoads) -> None:
        self.loader, self.finder = loader, finder

    def __getattr__(self, name: str) -> Any:  # get_code, get_source, is_package ... (runpy, inspect)
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.finder.in_flight += 1
        try:
            self.loader.exec_module(module)
        finally:
            self.finder.in_flight -= 1
            # Leave the module (and transformers' lazy stand-in, which shares its spec) with its own loader.
            module.__spec__.loader = self.loader
            if getattr(module, "__loader__", None) is self:
                module.__loader__ = self.loader
        self.finder.finished()


if "transformers" in sys.modules:
    register()
elif not any(isinstance(finder, _RegisterWhenTransformersLoads) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenTransformersLoads())

__all__ = [
    "TurboConfig",
    "TurboForAudioTextClassification",
    "TurboClassifierOutput",
    "TurboProcessor",
    "DataCollatorForAudioText",
    "DecodeAndCrop",
    "AudioTextClassificationPipeline",
    "TurboTrainer",
    "TurboTrainingArguments",
    "load_iemocap",
    "load_manifest",
    "register",
]
