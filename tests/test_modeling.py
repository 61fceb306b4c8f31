import json

import numpy as np
import pytest
import torch
from conftest import TurboModelTester
from huggingface_hub.errors import StrictDataclassClassValidationError
from transformers import AutoModel

from turbo_hf import TurboConfig, TurboForAudioTextClassification
from turbo_hf.losses import info_nce


@pytest.mark.parametrize(
    "audio_type,text_type",
    [("wav2vec2", "bert"), ("hubert", "roberta"), ("wavlm", "bert"), ("whisper", "gpt2")],
)
def test_turbo_training_step_reaches_both_encoders_projections_and_classifier(audio_type, text_type):
    tester = TurboModelTester(audio_type, text_type)
    model = tester.model().train()
    output = model(**tester.inputs())
    output.loss.backward()
    for name in ("audio_model", "text_model", "audio_projection", "text_projection", "classifier"):
        grads = [p.grad for p in getattr(model, name).parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    assert output.logits.shape == (3, tester.num_labels)
    assert output.audio_embeds.shape == output.text_embeds.shape == (3, 16)


def test_no_parameter_is_left_without_gradient_in_turbo_training(tester):
    # Unused parameters (e.g. BERT's pooler) break DDP without find_unused_parameters.
    model = tester.model().train()
    model(**tester.inputs()).loss.backward()
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_the_two_training_views_differ_and_evaluation_is_deterministic(tester):
    model = tester.model().train()
    batch = tester.inputs()
    audio = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"], num_views=2)
    text = model.get_text_features(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], num_views=2
    )
    assert not torch.allclose(*audio.split(3))
    assert not torch.allclose(*text.split(3))
    model.eval()
    with torch.no_grad():
        first, second = model(**batch), model(**batch)
    torch.testing.assert_close(first.logits, second.logits, rtol=0, atol=0)


@pytest.mark.parametrize("audio_type", ["wav2vec2", "whisper"])
def test_doubled_batch_in_eval_equals_two_single_forwards(audio_type):
    tester = TurboModelTester(audio_type, "bert")
    model = tester.model().eval()
    batch = tester.inputs()
    audio_input = batch.get("input_values", batch.get("input_features"))
    with torch.no_grad():
        doubled = model.get_audio_features(audio_input, batch["audio_attention_mask"], num_views=2)
        single = model.get_audio_features(audio_input, batch["audio_attention_mask"], num_views=1)
        doubled_text = model.get_text_features(batch["input_ids"], batch["attention_mask"], num_views=2)
        single_text = model.get_text_features(batch["input_ids"], batch["attention_mask"], num_views=1)
    for half in doubled.split(3):
        torch.testing.assert_close(half, single, rtol=1e-5, atol=1e-5)
    for half in doubled_text.split(3):
        torch.testing.assert_close(half, single_text, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "audio_type,feat_extract_norm",
    [
        ("wav2vec2", "group"),
        ("wav2vec2", "layer"),
        ("hubert", "layer"),
        ("wavlm", "group"),
        ("data2vec-audio", None),  # layer-norm convolutions, no `feat_extract_norm` field
    ],
)
def test_shared_front_end_equals_plain_encoder_call_without_dropout(audio_type, feat_extract_norm):
    """Values and gradients of the front-end-once path equal a plain 2N call of the encoder."""
    overrides = (
        {"feat_extract_norm": feat_extract_norm, "do_stable_layer_norm": feat_extract_norm == "layer"}
        if feat_extract_norm
        else {}
    )
    tester = TurboModelTester(audio_type, "bert", dropout=0.0, audio_overrides=overrides)
    batch = tester.inputs()
    # float64: the comparison is then exact up to 1e-8, free of float32 summation-order noise.
    fast, plain = tester.model().double().train(), tester.model().double().train()
    mask, input_values = batch["audio_attention_mask"], batch["input_values"].double()
    fast_hidden = fast.audio_adapter.encode(input_values, mask, 2)
    plain_hidden = plain.audio_model(
        input_values.repeat(2, 1),
        attention_mask=mask.repeat(2, 1) if plain.audio_adapter.encoder_takes_mask else None,
    ).last_hidden_state
    torch.testing.assert_close(fast_hidden, plain_hidden, rtol=1e-8, atol=1e-8)
    weights = torch.randn_like(fast_hidden)
    (fast_hidden * weights).sum().backward()
    (plain_hidden * weights).sum().backward()
    for (name, p_fast), p_plain in zip(fast.audio_model.named_parameters(), plain.audio_model.parameters()):
        if p_plain.grad is not None:
            torch.testing.assert_close(
                p_fast.grad, p_plain.grad, rtol=1e-7, atol=1e-9, msg=lambda m, name=name: f"{name}: {m}"
            )


def test_vanilla_loss_is_cross_entropy_only():
    tester = TurboModelTester(loss_mode="vanilla")
    output = tester.model().train()(**tester.inputs())
    assert output.loss.item() == pytest.approx(output.ce_loss.item())
    assert output.contrastive_loss is None and output.in_modal_loss is None


def test_cross_loss_is_ce_plus_one_cross_modal_info_nce():
    tester = TurboModelTester(loss_mode="cross", ce_weight=0.3, temperature=0.1)
    output = tester.model().train()(**tester.inputs())
    cross = info_nce(output.audio_embeds, output.text_embeds, 0.1)
    assert output.cross_modal_loss.item() == pytest.approx(cross.item(), rel=1e-5)
    assert output.in_modal_loss is None
    assert output.loss.item() == pytest.approx(0.3 * output.ce_loss.item() + 0.7 * cross.item(), rel=1e-5)


def test_turbo_loss_composes_ce_and_six_terms():
    # With dropout 0 both views coincide, so each term is computable from the view-1 embeddings.
    tester = TurboModelTester(loss_mode="turbo", dropout=0.0, ce_weight=0.5, temperature=0.05)
    output = tester.model().train()(**tester.inputs())
    a, t = output.audio_embeds, output.text_embeds
    in_modal = info_nce(a, a, 0.05) + info_nce(t, t, 0.05)
    cross_modal = 4 * info_nce(a, t, 0.05)
    assert output.in_modal_loss.item() == pytest.approx(in_modal.item(), rel=1e-4)
    assert output.cross_modal_loss.item() == pytest.approx(cross_modal.item(), rel=1e-4)
    expected = 0.5 * output.ce_loss.item() + 0.5 * (in_modal + cross_modal).item()
    assert output.loss.item() == pytest.approx(expected, rel=1e-4)


def _views_under_seed(model, batch, seed):
    """The two training views, drawn with the dropout masks that `model(**batch)` draws after seeding."""
    torch.manual_seed(seed)
    audio = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"], num_views=2)
    text = model.get_text_features(
        batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], num_views=2
    )
    n = batch["input_ids"].shape[0]
    return audio[:n], text[:n], audio[n:], text[n:]


def _output_and_its_views(seed: int, **config_kwargs):
    """A training forward under `seed` and the four views (a1, t1, a2, t2) it drew."""
    tester = TurboModelTester(dropout=0.2, temperature=0.1, **config_kwargs)
    model = tester.model().train()
    batch = tester.inputs(batch_size=4)
    torch.manual_seed(seed)
    output = model(**batch)
    views = _views_under_seed(model, batch, seed)
    assert not torch.allclose(views[0], views[2]) and not torch.allclose(views[1], views[3])
    return output, views


def test_turbo_terms_pair_the_right_views_with_dropout_on():
    output, (a1, t1, a2, t2) = _output_and_its_views(11, loss_mode="turbo")
    torch.testing.assert_close(output.audio_embeds, a1)
    in_modal = info_nce(a1, a2, 0.1) + info_nce(t1, t2, 0.1)
    cross_modal = (
        info_nce(a1, t1, 0.1) + info_nce(a1, t2, 0.1) + info_nce(a2, t1, 0.1) + info_nce(a2, t2, 0.1)
    )
    assert output.in_modal_loss.item() == pytest.approx(in_modal.item(), rel=1e-5)
    assert output.cross_modal_loss.item() == pytest.approx(cross_modal.item(), rel=1e-5)


def test_classify_on_both_averages_the_cross_entropy_of_two_different_views():
    tester = TurboModelTester(dropout=0.2, classify_on="both")
    model = tester.model().train()
    batch = tester.inputs(batch_size=4)
    torch.manual_seed(5)
    output = model(**batch)
    a1, t1, a2, t2 = _views_under_seed(model, batch, 5)
    ce = [
        torch.nn.functional.cross_entropy(model.classifier(torch.cat([a, t], dim=-1)), batch["labels"])
        for a, t in ((a1, t1), (a2, t2))
    ]
    assert ce[0].item() != pytest.approx(ce[1].item(), rel=1e-6)
    assert output.ce_loss.item() == pytest.approx(((ce[0] + ce[1]) / 2).item(), rel=1e-5)


def test_from_encoders_pretrained_keeps_the_encoder_weights(tmp_path):
    from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder

    audio = save_tiny_audio_encoder(tmp_path / "audio", "wav2vec2", seed=3)
    text = save_tiny_text_encoder(tmp_path / "text", "bert", words=["hello"], seed=4)
    model = TurboForAudioTextClassification.from_encoders_pretrained(audio, text, num_labels=2)
    for encoder, folder in ((model.audio_model, audio), (model.text_model, text)):
        reference = AutoModel.from_pretrained(folder).state_dict()
        loaded = encoder.state_dict()
        assert set(loaded) <= set(reference)
        for name, value in loaded.items():
            torch.testing.assert_close(value, reference[name], rtol=0, atol=0, msg=name)


def test_evaluation_runs_one_pass_and_its_loss_is_cross_entropy(tester):
    model = tester.model().eval()
    with torch.no_grad():
        output = model(**tester.inputs())
    assert output.loss.item() == pytest.approx(output.ce_loss.item())
    assert output.contrastive_loss is None and output.cross_modal_loss is None


def test_training_without_labels_returns_the_contrastive_part(tester):
    output = tester.model().train()(**tester.inputs(with_labels=False))
    assert output.ce_loss is None
    assert output.loss.item() == pytest.approx(0.5 * output.contrastive_loss.item(), rel=1e-6)


@pytest.mark.parametrize("auto", [False, True])
def test_save_and_load_reproduce_logits_exactly(tmp_path, tester, auto):
    model = tester.model().eval()
    batch = tester.inputs()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    loaded_class = AutoModel if auto else TurboForAudioTextClassification
    loaded = loaded_class.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, TurboForAudioTextClassification)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, loaded(**batch).logits, rtol=0, atol=0)


@pytest.mark.parametrize(
    "audio_type,overrides",
    [
        ("wav2vec2", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
        # One positional convolution: a second one reads the first one's output at padded frames,
        # which transformers' data2vec-audio does not zero, so a stack is padding-sensitive by itself.
        ("data2vec-audio", {"num_conv_pos_embeddings": 1}),
    ],
)
def test_padding_does_not_change_the_pooled_embedding_in_eval(audio_type, overrides):
    tester = TurboModelTester(audio_type, audio_overrides=overrides)
    model = tester.model().eval()
    assert model.audio_adapter.encoder_takes_mask
    utterance = tester.waveforms([0.5])[0]
    alone = tester.processor(audio=[utterance], text=["hello world"], sampling_rate=16000)
    padded = tester.processor(
        audio=[utterance, tester.waveforms([1.2])[0]],
        text=["hello world", "a much longer sad text"],
        sampling_rate=16000,
    )
    with torch.no_grad():
        audio_alone = model.get_audio_features(alone["input_values"], alone["audio_attention_mask"])
        audio_padded = model.get_audio_features(padded["input_values"], padded["audio_attention_mask"])[:1]
        text_alone = model.get_text_features(alone["input_ids"], alone["attention_mask"])
        text_padded = model.get_text_features(padded["input_ids"], padded["attention_mask"])[:1]
    torch.testing.assert_close(audio_alone, audio_padded, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(text_alone, text_padded, rtol=1e-4, atol=1e-5)


def test_audio_pooling_ignores_padded_frames_for_encoders_without_mask(tester):
    # wav2vec2-base style (group norm): the encoder takes no mask, but pooling still must.
    model = tester.model().eval()
    assert not model.audio_adapter.encoder_takes_mask
    batch = tester.inputs()
    with torch.no_grad():
        hidden = model.audio_model(batch["input_values"]).last_hidden_state
        frames = model.audio_model._get_feat_extract_output_lengths(batch["audio_attention_mask"].sum(-1))
        expected = torch.stack([hidden[i, : frames[i]].mean(0) for i in range(hidden.shape[0])])
        pooled = model.get_audio_features(batch["input_values"], batch["audio_attention_mask"])
    assert frames.min() < hidden.shape[1]
    torch.testing.assert_close(pooled, model.audio_projection(expected), rtol=1e-5, atol=1e-5)


def test_last_token_pooling_is_the_same_with_left_and_right_padding():
    tester = TurboModelTester("wav2vec2", "gpt2")
    assert tester.config.text_pooling == "last"
    model = tester.model().eval()
    texts = ["hello", "hello world and more"]
    embeddings = []
    for side in ("right", "left"):
        tester.tokenizer.padding_side = side
        encoded = tester.tokenizer(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            embeddings.append(model.get_text_features(encoded["input_ids"], encoded["attention_mask"]))
    torch.testing.assert_close(embeddings[0][1], embeddings[1][1], rtol=1e-4, atol=1e-5)
    assert embeddings[0].shape == (2, 16)


def test_freeze_feature_encoder_stops_front_end_gradients(tester):
    model = tester.model().train()
    model.freeze_feature_encoder()
    model(**tester.inputs()).loss.backward()
    assert all(p.grad is None for p in model.audio_model.feature_extractor.parameters())
    assert model.audio_model.encoder.layers[0].attention.q_proj.weight.grad is not None


def test_freeze_feature_encoder_names_the_encoder_that_has_none():
    with pytest.raises(ValueError, match="whisper"):
        TurboModelTester("whisper", "bert").model().freeze_feature_encoder()


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    tester = TurboModelTester(dropout=0.0)
    batch = tester.inputs()
    plain, checkpointed = tester.model().train(), tester.model().train()
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.is_gradient_checkpointing
    losses = []
    for model in (plain, checkpointed):
        loss = model(**batch).loss
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    torch.testing.assert_close(
        plain.audio_projection.weight.grad, checkpointed.audio_projection.weight.grad, rtol=1e-4, atol=1e-6
    )


def test_config_pushes_dropout_into_encoders_and_round_trips(tmp_path):
    config = TurboModelTester(dropout=0.3, loss_mode="cross").config
    assert config.audio_config.hidden_dropout == config.audio_config.feat_proj_dropout == 0.3
    assert config.text_config.hidden_dropout_prob == config.text_config.attention_probs_dropout_prob == 0.3
    assert config.audio_config.layerdrop == 0.0
    config.save_pretrained(tmp_path)
    loaded = TurboConfig.from_pretrained(tmp_path)
    assert loaded.loss_mode == "cross" and loaded.dropout == 0.3
    assert loaded.audio_config.to_dict() == config.audio_config.to_dict()
    from transformers import AutoConfig

    auto = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(auto, TurboConfig) and auto.text_config.to_dict() == config.text_config.to_dict()


def test_config_accepts_sub_configs_given_as_dicts():
    reference = TurboModelTester().config
    config = TurboConfig(
        audio_config=reference.audio_config.to_dict(),
        text_config=reference.text_config.to_dict(),
        num_labels=3,
    )
    assert config.audio_config.model_type == "wav2vec2" and config.text_config.model_type == "bert"
    assert config.audio_config.hidden_size == reference.audio_config.hidden_size


def test_encoder_dropout_minus_one_leaves_encoder_settings_alone():
    from turbo_hf.testing.tiny_encoders import tiny_audio_config, tiny_text_config

    config = TurboConfig(
        audio_config=tiny_audio_config(hidden_dropout=0.05),
        text_config=tiny_text_config(),
        encoder_dropout=-1,
    )
    assert config.audio_config.hidden_dropout == 0.05


@pytest.mark.parametrize(
    "field,value",
    [
        ("loss_mode", "simclr"),
        ("ce_weight", 1.5),
        ("temperature", 0.0),
        ("text_pooling", "max"),
        ("encoder_dropout", 1.5),
        ("encoder_layerdrop", 2.0),
        ("audio_encoder_dropout", 1.0),
        ("text_encoder_dropout", 1.5),
        ("audio_window", "30s"),
        ("feature_norm", "layer"),
        ("duplicate_negatives", "drop"),
    ],
)
def test_config_rejects_bad_values_and_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TurboConfig(**{field: value})


def test_from_pretrained_overrides_reach_the_encoders_and_are_checked(tmp_path):
    tester = TurboModelTester(dropout=0.2)
    tester.model().save_pretrained(tmp_path)
    # transformers sets these keyword arguments on the config after its __post_init__ has run.
    loaded = TurboForAudioTextClassification.from_pretrained(tmp_path, dropout=0.0)
    assert loaded.projection_dropout.p == 0.0
    assert loaded.audio_model.config.hidden_dropout == loaded.config.audio_config.hidden_dropout == 0.0
    assert loaded.text_model.config.hidden_dropout_prob == 0.0
    with pytest.raises(ValueError, match="loss_mode"):
        TurboForAudioTextClassification.from_pretrained(tmp_path, loss_mode="constrastive")
    with pytest.raises(ValueError, match="temperature"):  # refused where it is given
        TurboConfig.from_pretrained(tmp_path, temperature=-1.0)
    config = TurboConfig.from_pretrained(tmp_path)
    config.temperature = -1.0
    # save_pretrained runs the config's strict validators, validate_turbo_fields among them.
    with pytest.raises(StrictDataclassClassValidationError, match="temperature"):
        config.save_pretrained(tmp_path / "bad")


def test_audio_shorter_than_the_receptive_field_is_an_error_naming_the_rows(tester):
    model = tester.model().eval()
    needed = model.min_audio_samples
    # The tiny encoder's kernels (10, 8, 8) and strides (5, 4, 4): 185 samples make one frame.
    assert needed == 185
    short = tester.processor(
        audio=[tester.waveforms([0.5])[0], np.zeros(needed - 1, np.float32)],
        text=["long enough", "too short"],
        sampling_rate=16000,
    )
    with torch.no_grad(), pytest.raises(ValueError, match=r"row\(s\) \{1: 184\}.*fewer than the 185 samples"):
        model(**short)
    just_enough = tester.processor(audio=[np.zeros(needed, np.float32)], text=["ok"], sampling_rate=16000)
    with torch.no_grad():
        assert model(**just_enough).logits.shape == (1, tester.num_labels)


@pytest.mark.parametrize(
    "overrides,training",
    [
        ({"mask_time_prob": 0.05, "mask_time_length": 10}, True),  # SpecAugment spans, training only
        (
            {"add_adapter": True, "adapter_kernel_size": 5, "adapter_stride": 2, "num_adapter_layers": 3},
            False,
        ),
    ],
)
def test_min_audio_samples_covers_spec_augment_and_adapters(overrides, training):
    tester = TurboModelTester(audio_overrides=overrides, loss_mode="vanilla")
    model = tester.model().train(training)
    needed = model.min_audio_samples
    assert needed > 185  # more than the front end's receptive field alone
    for length, fits in ((needed, True), (needed - 1, False)):
        batch = tester.processor(audio=[np.zeros(length, np.float32)], text=["x"], sampling_rate=16000)
        if fits:
            model(**batch)
        else:
            with pytest.raises(ValueError, match=f"has {length} samples, and it needs at least {needed}"):
                model(**batch)
    # Beside a long enough utterance a shorter one is fine: those needs are the padded batch's.
    batch = tester.processor(
        audio=[np.zeros(needed, np.float32), np.zeros(200, np.float32)], text=["x", "y"], sampling_rate=16000
    )
    model(**batch)


def test_in_modal_loss_is_ce_plus_the_two_in_modal_terms_of_two_views():
    output, (a1, t1, a2, t2) = _output_and_its_views(3, loss_mode="in_modal", ce_weight=0.4)
    in_modal = info_nce(a1, a2, 0.1) + info_nce(t1, t2, 0.1)
    assert output.cross_modal_loss is None
    assert output.in_modal_loss.item() == pytest.approx(in_modal.item(), rel=1e-5)
    assert output.contrastive_loss.item() == pytest.approx(in_modal.item(), rel=1e-5)
    assert output.loss.item() == pytest.approx(0.4 * output.ce_loss.item() + 0.6 * in_modal.item(), rel=1e-5)
    tester = TurboModelTester(loss_mode="in_modal")
    with torch.no_grad():
        evaluated = tester.model().eval()(**tester.inputs())
    assert evaluated.in_modal_loss is None
    assert evaluated.loss.item() == pytest.approx(evaluated.ce_loss.item())


def test_feature_norm_batch_normalises_pooled_features_with_batch_then_running_statistics(tmp_path):
    tester = TurboModelTester(feature_norm="batch", dropout=0.0)
    model = tester.model().train()
    seen = {}
    for name in ("audio_feature_norm", "text_feature_norm", "audio_projection", "text_projection"):
        getattr(model, name).register_forward_pre_hook(
            lambda m, args, name=name: seen.update({name: args[0]})
        )
    batch = tester.inputs(batch_size=4)
    model(**batch).loss.backward()
    for modality in ("audio", "text"):  # both views: 8 rows, normalised with their own statistics
        pooled, normalised = seen[f"{modality}_feature_norm"], seen[f"{modality}_projection"]
        assert pooled.shape[0] == 8
        expected = (pooled - pooled.mean(0)) / torch.sqrt(pooled.var(0, unbiased=False) + 1e-5)
        torch.testing.assert_close(normalised, expected, rtol=1e-4, atol=1e-4)
    norm = model.audio_feature_norm
    assert isinstance(norm, torch.nn.BatchNorm1d) and not norm.affine and norm.num_batches_tracked == 1
    assert not torch.allclose(norm.running_mean, torch.zeros_like(norm.running_mean))
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []
    model.eval()
    with torch.no_grad():
        model(**batch)
    expected = (seen["audio_feature_norm"] - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps)
    torch.testing.assert_close(seen["audio_projection"], expected, rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path)
    loaded = TurboForAudioTextClassification.from_pretrained(tmp_path).eval()
    torch.testing.assert_close(loaded.audio_feature_norm.running_var, norm.running_var, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, loaded(**batch).logits, rtol=0, atol=0)


def test_without_feature_norm_the_model_is_the_paper_one():
    model = TurboModelTester().model()
    assert not any(isinstance(module, torch.nn.BatchNorm1d) for module in model.modules())
    assert not [name for name in model.state_dict() if "feature_norm" in name]


@pytest.mark.parametrize(
    "settings,audio,text",
    [
        ({}, 0.0, 0.2),  # Whisper keeps its pretrained 0, the text encoder gets `dropout`
        ({"encoder_dropout": 0.2}, 0.2, 0.2),  # the paper's 0.2 everywhere
        ({"dropout": 0.3}, 0.0, 0.3),
        ({"encoder_dropout": 0.2, "audio_encoder_dropout": 0.05}, 0.05, 0.2),
        ({"audio_encoder_dropout": 0.1, "text_encoder_dropout": 0.0}, 0.1, 0.0),
        ({"encoder_dropout": 0.2, "text_encoder_dropout": -1}, 0.2, 0.1),  # -1: the encoder's own (0.1)
    ],
)
def test_encoder_dropout_is_per_modality_with_family_defaults(settings, audio, text):
    config = TurboModelTester("whisper", "bert", **settings).config
    whisper, bert = config.audio_config, config.text_config
    assert whisper.dropout == whisper.attention_dropout == whisper.activation_dropout == audio
    assert bert.hidden_dropout_prob == bert.attention_probs_dropout_prob == text
    model = TurboForAudioTextClassification(config)
    assert model.projection_dropout.p == settings.get("dropout", 0.2)  # the head keeps its own setting
    assert model.audio_model.dropout == audio


def test_wav2vec2_family_encoders_get_the_papers_dropout_by_default():
    config = TurboModelTester("wav2vec2", "bert").config
    assert config.audio_config.hidden_dropout == config.audio_config.feat_proj_dropout == 0.2
    assert config.text_config.hidden_dropout_prob == 0.2


@pytest.mark.parametrize("audio_type,saved_dropout", [("whisper", 0.2), ("wav2vec2", 0.3)])
def test_configs_saved_before_per_modality_dropout_load_with_the_dropout_they_had(
    tmp_path, audio_type, saved_dropout
):
    # Earlier versions pushed `dropout` into both encoders and wrote no per-modality fields.
    config = TurboModelTester(audio_type, "bert", dropout=saved_dropout, encoder_dropout=saved_dropout).config
    written = config.to_dict()
    for name in ("audio_encoder_dropout", "text_encoder_dropout", "audio_window", "feature_norm"):
        del written[name]
    written["encoder_dropout"] = None
    (tmp_path / "config.json").write_text(json.dumps(written))
    loaded = TurboConfig.from_pretrained(tmp_path)
    audio_attribute = "dropout" if audio_type == "whisper" else "hidden_dropout"
    assert getattr(loaded.audio_config, audio_attribute) == saved_dropout
    assert loaded.text_config.hidden_dropout_prob == saved_dropout
    assert loaded.audio_window == "full" and loaded.feature_norm is None
    model = TurboForAudioTextClassification(loaded)
    assert model.projection_dropout.p == saved_dropout


@pytest.mark.parametrize("training", [False, True])
def test_audio_text_and_labels_of_different_batch_sizes_are_refused(tester, training):
    model = tester.model().train(training)
    inputs = tester.inputs(batch_size=4)
    two_texts = tester.processor(text=["a", "b"])
    mismatched = {
        **inputs,
        "input_ids": two_texts["input_ids"],
        "attention_mask": two_texts["attention_mask"],
    }
    mismatched["token_type_ids"] = two_texts["token_type_ids"]
    with pytest.raises(ValueError, match=r"got 4 audio rows, 2 input_ids rows, 4 labels rows"):
        model(**mismatched)
    with pytest.raises(ValueError, match=r"4 input_ids rows, 3 labels rows"):
        model(**{**inputs, "labels": inputs["labels"][:3]})


def test_the_processor_pairs_as_many_clips_as_transcripts(tester):
    with pytest.raises(ValueError, match=r"2 audio clip\(s\) but 1 transcript\(s\)"):
        tester.processor(audio=tester.waveforms([0.5, 0.5]), text="hello")
    with pytest.raises(ValueError, match=r"3 audio clip\(s\) but 2 transcript\(s\)"):
        tester.processor(audio=tester.waveforms([0.5, 0.5, 0.5]), text=["a", "b"])
