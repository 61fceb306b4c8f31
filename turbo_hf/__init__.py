"""turbo_hf: fine-tune audio+text classifiers with Turbo contrastive learning.

Importing the package registers TurboConfig / TurboForAudioTextClassification / TurboProcessor with
transformers' Auto classes, so `AutoModel.from_pretrained(saved_dir)` works without
`trust_remote_code`, and registers the "audio-text-classification" pipeline task.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor

from .collator import DataCollatorForAudioText, DecodeAndCrop
from .configuration_turbo import TurboConfig
from .data.iemocap import load_iemocap
from .data.manifest import load_manifest
from .modeling_turbo import TurboClassifierOutput, TurboForAudioTextClassification
from .pipeline import AudioTextClassificationPipeline, register_pipeline
from .processing_turbo import TurboProcessor
from .trainer import TurboTrainer, TurboTrainingArguments

__version__ = "0.1.0"


def _register_auto_classes() -> None:
    # exist_ok: re-importing (e.g. importlib.reload in notebooks) must not fail.
    AutoConfig.register(TurboConfig.model_type, TurboConfig, exist_ok=True)
    AutoModel.register(TurboConfig, TurboForAudioTextClassification, exist_ok=True)
    AutoProcessor.register(TurboConfig, TurboProcessor, exist_ok=True)


_register_auto_classes()
register_pipeline()  # the "audio-text-classification" task of transformers.pipeline

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
]
