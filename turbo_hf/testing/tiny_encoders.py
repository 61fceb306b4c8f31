"""Tiny randomly initialised encoders written as ordinary pretrained-model folders.

The demo and the tests need encoders without a download. These folders hold a config, random
weights, a feature extractor or a tokenizer, exactly like a hub checkpoint, so they go through the
same `from_pretrained` code that loads `facebook/wav2vec2-base` and `bert-base-uncased`.
They are for plumbing and demos only: their weights carry no knowledge.
"""

from __future__ import annotations

import string
from pathlib import Path

from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    AutoModel,
    BertConfig,
    BertTokenizer,
    Data2VecAudioConfig,
    GPT2Config,
    GPT2Tokenizer,
    HubertConfig,
    PreTrainedConfig,
    RobertaConfig,
    RobertaTokenizer,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
)

TINY_HIDDEN = 32
TINY_LAYERS = 2

_WAV2VEC2_FAMILY = {
    "wav2vec2": Wav2Vec2Config,
    "hubert": HubertConfig,
    "wavlm": WavLMConfig,
    "data2vec-audio": Data2VecAudioConfig,
}
# Whisper pads every input to a fixed window; one second keeps the tiny encoder tiny.
_TINY_WHISPER_SECONDS = 1


def tiny_audio_config(model_type: str = "wav2vec2", **overrides) -> PreTrainedConfig:
    """A 2-layer, 32-wide audio encoder config (conv front end strides 5*4*4 = 80 samples)."""
    if model_type == "whisper":
        kwargs = dict(
            vocab_size=64,
            d_model=TINY_HIDDEN,
            encoder_layers=TINY_LAYERS,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            num_mel_bins=80,
            max_source_positions=_TINY_WHISPER_SECONDS * 50,
            max_target_positions=32,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
        kwargs.update(overrides)
        return WhisperConfig(**kwargs)
    if model_type not in _WAV2VEC2_FAMILY:
        raise ValueError(
            f"no tiny audio config for {model_type!r}; choose from {sorted(_WAV2VEC2_FAMILY) + ['whisper']}"
        )
    kwargs = dict(
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=32,
    )
    if model_type == "data2vec-audio":
        # data2vec-audio stacks `num_conv_pos_embeddings` positional convolutions of
        # `conv_pos_kernel_size` each, where wav2vec2 has one convolution of that many taps.
        kwargs.update(num_conv_pos_embeddings=2, conv_pos_kernel_size=15)
    kwargs.update(overrides)
    return _WAV2VEC2_FAMILY[model_type](**kwargs)


def tiny_vocabulary(words: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Word list for a tiny WordPiece vocabulary: given words, then letters and digits as
    word-initial and continuation pieces so that any lowercase text tokenizes without [UNK]."""
    characters = list(string.ascii_lowercase + string.digits + string.punctuation)
    pieces = characters + ["##" + c for c in characters]
    seen = set()
    return [w for w in [*sorted({w.lower() for w in words}), *pieces] if not (w in seen or seen.add(w))]


def tiny_text_config(model_type: str = "bert", vocab_size: int = 256, **overrides) -> PreTrainedConfig:
    """A 2-layer, 32-wide text encoder config."""
    if model_type == "gpt2":
        kwargs = dict(
            vocab_size=vocab_size, n_embd=TINY_HIDDEN, n_layer=TINY_LAYERS, n_head=2, n_positions=128
        )
        kwargs.update(bos_token_id=vocab_size - 1, eos_token_id=vocab_size - 1)
        kwargs.update(overrides)
        return GPT2Config(**kwargs)
    config_class = {"bert": BertConfig, "roberta": RobertaConfig}.get(model_type)
    if config_class is None:
        raise ValueError(f"no tiny text config for {model_type!r}; choose from bert, roberta, gpt2")
    kwargs = dict(
        vocab_size=vocab_size,
        hidden_size=TINY_HIDDEN,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
    )
    if model_type == "roberta":
        kwargs.update(pad_token_id=1, bos_token_id=0, eos_token_id=2)
    kwargs.update(overrides)
    return config_class(**kwargs)


def _byte_level_tokenizer(tokenizer_class, special_tokens: list[str], **kwargs):
    byte_symbols = sorted(ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(special_tokens + byte_symbols)}
    return tokenizer_class(vocab=vocab, merges=[], **kwargs)


def tiny_tokenizer(model_type: str = "bert", words: list[str] | tuple[str, ...] = ()):
    """A tokenizer matching `tiny_text_config(model_type)`; builds its vocabulary locally."""
    if model_type == "bert":
        tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *tiny_vocabulary(words)]
        return BertTokenizer(vocab={token: index for index, token in enumerate(tokens)})
    if model_type == "roberta":
        return _byte_level_tokenizer(RobertaTokenizer, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    if model_type == "gpt2":
        tokenizer = _byte_level_tokenizer(GPT2Tokenizer, ["<|endoftext|>"])
        tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    raise ValueError(f"no tiny tokenizer for {model_type!r}; choose from bert, roberta, gpt2")


def tiny_feature_extractor(model_type: str = "wav2vec2"):
    """The feature extractor matching `tiny_audio_config(model_type)`, at 16 kHz."""
    if model_type == "whisper":
        return WhisperFeatureExtractor(feature_size=80, chunk_length=_TINY_WHISPER_SECONDS)
    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


def save_tiny_audio_encoder(
    path: str | Path, model_type: str = "wav2vec2", seed: int = 0, **overrides
) -> Path:
    """Write a tiny random audio encoder + its feature extractor as a pretrained folder."""
    import torch

    path = Path(path)
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_audio_config(model_type, **overrides))
    model.save_pretrained(path)
    tiny_feature_extractor(model_type).save_pretrained(path)
    return path


def save_tiny_text_encoder(
    path: str | Path, model_type: str = "bert", words: list[str] | tuple[str, ...] = (), seed: int = 0
) -> Path:
    """Write a tiny random text encoder + its tokenizer as a pretrained folder."""
    import torch

    path = Path(path)
    tokenizer = tiny_tokenizer(model_type, words)
    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_text_config(model_type, vocab_size=len(tokenizer)))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


__all__ = [
    "tiny_audio_config",
    "tiny_text_config",
    "tiny_tokenizer",
    "tiny_feature_extractor",
    "tiny_vocabulary",
    "save_tiny_audio_encoder",
    "save_tiny_text_encoder",
]
