"""The encoder adapters: which adapter drives which family, and the guard around the private
transformers members they call (a transformers release that changes one must fail here, loudly)."""

import pytest
import torch
import transformers
from conftest import TurboModelTester
from transformers import AutoModel, Wav2Vec2Model
from transformers.models.whisper.modeling_whisper import WhisperEncoder, WhisperPreTrainedModel

from turbo_hf.audio_encoders import (
    AudioEncoderAdapter,
    TransformersAPIError,
    Wav2Vec2FamilyAdapter,
    WhisperAdapter,
    audio_encoder_adapter,
    build_audio_encoder,
)
from turbo_hf.testing.tiny_encoders import tiny_audio_config, tiny_text_config
from turbo_hf.text_encoders import text_encoder_init_kwargs

FAMILIES = {
    "wav2vec2": Wav2Vec2FamilyAdapter,
    "hubert": Wav2Vec2FamilyAdapter,
    "wavlm": Wav2Vec2FamilyAdapter,
    "data2vec-audio": Wav2Vec2FamilyAdapter,
    "whisper": WhisperAdapter,
}


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
def test_installed_transformers_has_every_private_member_the_audio_adapter_calls(model_type):
    # On a transformers release that renamed or re-signed one of them, this raises
    # TransformersAPIError naming the version and the member.
    overrides = {"add_adapter": True} if model_type == "wav2vec2" else {}
    encoder = build_audio_encoder(tiny_audio_config(model_type, **overrides))
    adapter = audio_encoder_adapter(encoder)
    assert type(adapter) is FAMILIES[model_type]
    adapter.check_transformers_api()


@pytest.mark.parametrize("model_type", ["bert", "roberta", "gpt2"])
def test_installed_transformers_still_builds_text_encoders_without_their_pooler(model_type):
    config = tiny_text_config(model_type)
    kwargs = text_encoder_init_kwargs(config)
    assert kwargs == ({} if model_type == "gpt2" else {"add_pooling_layer": False})
    assert getattr(AutoModel.from_config(config, **kwargs), "pooler", None) is None


def test_a_missing_private_member_is_a_clear_error_naming_version_and_member(monkeypatch):
    monkeypatch.delattr(Wav2Vec2Model, "_mask_hidden_states")
    with pytest.raises(TransformersAPIError) as error:
        TurboModelTester("wav2vec2").model()
    message = str(error.value)
    assert f"transformers {transformers.__version__}" in message
    assert "Wav2Vec2Model._mask_hidden_states" in message


def test_a_changed_signature_is_a_clear_error_naming_the_parameter(monkeypatch):
    monkeypatch.setattr(Wav2Vec2Model, "_mask_hidden_states", lambda self, hidden_states: hidden_states)
    with pytest.raises(TransformersAPIError, match=r"without the parameter\(s\) \['attention_mask'\]"):
        TurboModelTester("wav2vec2").model()


def test_a_missing_whisper_member_is_a_clear_error(monkeypatch):
    monkeypatch.delattr(WhisperPreTrainedModel, "_get_feat_extract_output_lengths")
    with pytest.raises(
        TransformersAPIError, match="has no `WhisperEncoder._get_feat_extract_output_lengths`"
    ):
        TurboModelTester("whisper").model()


def test_other_audio_encoders_fall_back_to_the_whole_encoder_on_every_view():
    from transformers import UniSpeechConfig

    settings = {k: v for k, v in tiny_audio_config("wav2vec2").to_dict().items() if k != "model_type"}
    config = UniSpeechConfig(**settings)
    assert config.model_type == "unispeech"
    encoder = build_audio_encoder(config).eval()
    adapter = audio_encoder_adapter(encoder)
    assert type(adapter) is AudioEncoderAdapter
    audio = torch.randn(2, 4000)
    mask = torch.ones(2, 4000, dtype=torch.long)
    mask[1, 3000:] = 0
    with torch.no_grad():
        doubled = adapter.encode(audio, mask, num_views=2)
        single = encoder(audio).last_hidden_state  # group norm: no mask, as the wav2vec2 family
    torch.testing.assert_close(doubled, single.repeat(2, 1, 1))
    frames = adapter.frame_mask(mask, doubled.shape[1])
    assert frames[0].all() and not frames[1].all()
    assert adapter.receptive_field_samples == 185


def test_whisper_adapter_reads_the_window_from_the_encoder_config():
    encoder = WhisperEncoder(tiny_audio_config("whisper", max_source_positions=150))
    assert WhisperAdapter(encoder).full_window_frames == 300
