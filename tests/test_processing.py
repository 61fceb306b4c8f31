import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import BAD_MAX_DURATIONS, TurboModelTester
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import AutoProcessor, set_seed

from turbo_hf import DataCollatorForAudioText, DecodeAndCrop, TurboForAudioTextClassification, TurboProcessor
from turbo_hf.arguments import DataArguments
from turbo_hf.audio import AudioDecodingError, crop_waveform, load_audio


def test_processor_returns_the_model_inputs_with_an_audio_mask(tester):
    batch = tester.processor(
        audio=tester.waveforms([1.0, 0.5]), text=["hello", "sad world"], sampling_rate=16000
    )
    assert set(batch) == {
        "input_values",
        "audio_attention_mask",
        "input_ids",
        "attention_mask",
        "token_type_ids",
    }
    assert batch["input_values"].shape == (2, 16000)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [16000, 8000]
    assert set(tester.processor.model_input_names) >= set(batch)


def test_processor_resamples_arrays_given_at_another_rate(tester):
    at_8k = np.random.default_rng(0).standard_normal(8000).astype(np.float32)
    batch = tester.processor(audio=[at_8k], text=["hi"], sampling_rate=8000)
    assert batch["input_values"].shape == (1, 16000)


def test_processor_pads_whisper_features_to_its_fixed_window():
    tester = TurboModelTester("whisper", "bert")
    batch = tester.processor(audio=tester.waveforms([0.5, 0.25]), text=["a", "b"], sampling_rate=16000)
    assert batch["input_features"].shape == (2, 80, 100)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [50, 25]


def test_processor_round_trips_through_save_and_auto_processor(tmp_path, tester):
    tester.processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, TurboProcessor)
    kwargs = dict(audio=tester.waveforms([0.7, 0.3]), text=["hello world", "sad"], sampling_rate=16000)
    original, reloaded = tester.processor(**kwargs), loaded(**kwargs)
    for key in original:
        torch.testing.assert_close(original[key], reloaded[key], rtol=0, atol=0)


def test_processor_requires_some_input(tester):
    with pytest.raises(ValueError, match="audio"):
        tester.processor()


def _examples(write_wav):
    return [
        {"id": "u1", "audio": str(write_wav("a.wav", seconds=1.5)), "text": "hello world", "label": 0},
        {
            "id": "u2",
            "audio": str(write_wav("b.wav", seconds=0.5, sampling_rate=8000, channels=2)),
            "text": "sad",
            "label": 2,
        },
        {
            "id": "u3",
            "audio": str(write_wav("c.wav", seconds=0.8, sampling_rate=44100)),
            "text": None,
            "label": 1,
        },
    ]


def test_collator_decodes_real_wav_files_into_a_padded_batch(write_wav, tester):
    collator = DataCollatorForAudioText(tester.processor)
    batch = collator(_examples(write_wav))
    assert batch["input_values"].shape == (3, 24000)
    assert batch["audio_attention_mask"].sum(-1).tolist() == [24000, 8000, 12800]
    assert batch["labels"].tolist() == [0, 2, 1]
    assert batch["input_ids"].shape[0] == 3
    tester.model().eval()(**batch)


def _read(split_rows: Dataset, transform: DecodeAndCrop, collator, size: int = 3) -> torch.Tensor:
    split = split_rows.with_transform(transform)
    return collator([split[index] for index in range(size)])["input_values"]


def test_split_transforms_crop_randomly_in_training_and_keep_whole_utterances_in_eval(write_wav, tester):
    rows, collator = Dataset.from_list(_examples(write_wav)), DataCollatorForAudioText(tester.processor)
    train = DecodeAndCrop(16000, max_duration=1.0, random_crop=True)
    assert _read(rows, train, collator).shape[1] == 16000
    torch.manual_seed(0)
    windows = {tuple(_read(rows, train, collator, size=1)[0, :8].tolist()) for _ in range(4)}
    assert len(windows) > 1  # a new random window each time, not always the start
    assert _read(rows, DecodeAndCrop(16000), collator).shape[1] == 24000  # evaluation: whole utterances
    centred = DecodeAndCrop(16000, max_duration=1.0)
    first, second = _read(rows, centred, collator), _read(rows, centred, collator)
    assert first.shape[1] == 16000 and torch.equal(first, second)


def test_training_crops_are_new_every_epoch_and_reproducible_from_the_seed(write_wav, tester):
    rows = Dataset.from_list(_examples(write_wav))
    split = rows.with_transform(DecodeAndCrop(16000, max_duration=0.25, random_crop=True))
    collator = DataCollatorForAudioText(tester.processor)

    def two_epochs(seed: int) -> list[torch.Tensor]:
        set_seed(seed)
        loader = DataLoader(split, batch_size=3, collate_fn=collator, num_workers=2)
        return [next(iter(loader))["input_values"] for _ in range(2)]

    first, again = two_epochs(0), two_epochs(0)
    assert first[0].shape == (3, 4000) and not torch.equal(first[0], first[1])  # new windows each epoch
    assert all(torch.equal(a, b) for a, b in zip(first, again))  # the same ones from the same seed


def test_collator_accepts_decoded_arrays_and_bytes(write_wav, tester):
    path = write_wav("d.wav", seconds=0.5)
    array, rate = sf.read(path, dtype="float32")
    examples = [
        {"audio": {"array": array, "sampling_rate": rate}, "text": "a", "label": 0},
        {"audio": {"bytes": path.read_bytes(), "path": None}, "text": "b", "label": 1},
    ]
    batch = DataCollatorForAudioText(tester.processor)(examples)
    torch.testing.assert_close(batch["input_values"][0], batch["input_values"][1])


def test_collator_error_names_the_example_and_the_file(tmp_path, tester):
    collator = DataCollatorForAudioText(tester.processor)
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioDecodingError, match=r"u9.*missing\.wav"):
        collator([{"id": "u9", "audio": str(missing), "text": "x", "label": 0}])
    with pytest.raises(KeyError, match="audio"):
        collator([{"text": "x", "label": 0}])


def test_collator_names_a_missing_text_field_instead_of_encoding_an_empty_transcript(write_wav, tester):
    collator = DataCollatorForAudioText(tester.processor, text_column="transcript")
    with pytest.raises(KeyError, match=r"'transcript' field; found \['audio', 'label', 'text'\]"):
        collator([{"audio": str(write_wav("t.wav")), "text": "hello", "label": 0}])
    # A row that has the field but no transcript (None) is the empty transcript.
    none, empty = (
        DataCollatorForAudioText(tester.processor)(
            [{"audio": str(write_wav("t.wav")), "text": text, "label": 0}]
        )
        for text in (None, "")
    )
    assert torch.equal(none["input_ids"], empty["input_ids"])


def test_collator_refuses_a_partly_labelled_batch(write_wav, tester):
    collator = DataCollatorForAudioText(tester.processor)
    path = str(write_wav("p.wav"))
    with pytest.raises(ValueError, match=r"examples \[1\] of the batch have no 'label' value"):
        collator([{"audio": path, "text": "a", "label": 0}, {"audio": path, "text": "b", "label": None}])


def test_collator_accepts_numpy_integer_labels(write_wav, tester):
    path = str(write_wav("n.wav"))
    batch = DataCollatorForAudioText(tester.processor)(
        [{"audio": path, "text": "a", "label": np.int64(2)}, {"audio": path, "text": "b", "label": 1}]
    )
    assert batch["labels"].tolist() == [2, 1]


def test_collator_rejects_string_labels(write_wav, tester):
    collator = DataCollatorForAudioText(tester.processor)
    with pytest.raises(TypeError, match="ClassLabel"):
        collator([{"audio": str(write_wav("e.wav")), "text": "x", "label": "happy"}])


def test_collator_without_labels_leaves_them_out(write_wav, tester):
    batch = DataCollatorForAudioText(tester.processor)([{"audio": str(write_wav("f.wav")), "text": "x"}])
    assert "labels" not in batch


def test_collator_refuses_utterances_under_the_encoders_receptive_field(write_wav, tester):
    model = tester.model()
    collator = DataCollatorForAudioText(tester.processor, min_samples=model.receptive_field_samples)
    long_enough = {"id": "ok", "audio": str(write_wav("long.wav", seconds=0.5)), "text": "a", "label": 0}
    click = {"id": "click7", "audio": {"array": np.zeros(100, np.float32), "sampling_rate": 16000}}
    with pytest.raises(
        AudioDecodingError, match=r"example click7: audio too short: 100 samples.*at least 185"
    ):
        collator([long_enough, {**click, "text": "b", "label": 1}])
    assert collator([long_enough])["input_values"].shape[0] == 1


# -- crops are read before resampling; limits and labels are checked where they are given ---------
def test_training_crops_read_only_their_window_and_are_the_crops_of_the_whole_file(tmp_path, monkeypatch):
    path = str(tmp_path / "long.wav")
    sf.write(path, 0.3 * np.random.default_rng(1).standard_normal(30 * 44100), 44100, subtype="FLOAT")
    transform = DecodeAndCrop(16000, max_duration=0.5, random_crop=True)
    read, frames_read = sf.SoundFile.read, []

    def counting_read(self, frames=-1, *args, **kwargs):
        data = read(self, frames, *args, **kwargs)
        frames_read.append(len(data))
        return data

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    torch.manual_seed(3)
    crops = [transform({"audio": [path]})["audio"][0] for _ in range(3)]
    # Half a second (+ the resampler's context) of the 30 s file per crop.
    assert len(frames_read) == 3 and max(frames_read) < 0.6 * 44100
    # The same windows, drawn from the same RNG, as cropping the whole decoded file.
    whole = load_audio(path, 16000)
    torch.manual_seed(3)
    expected = [crop_waveform(whole, 8000, random=True) for _ in range(3)]
    for crop, reference in zip(crops, expected):
        assert crop.shape == (8000,)
        np.testing.assert_allclose(crop, reference, atol=1e-5)
    centre = DecodeAndCrop(16000, max_duration=0.5)({"audio": [path]})["audio"][0]
    np.testing.assert_allclose(centre, crop_waveform(whole, 8000, random=False), atol=1e-5)


@pytest.mark.parametrize("max_duration, error", [*BAD_MAX_DURATIONS, (1e-6, ValueError)])
def test_a_max_duration_that_keeps_nothing_is_refused_where_it_is_given(max_duration, error):
    with pytest.raises(error, match=r"max_duration"):
        DecodeAndCrop(16000, max_duration=max_duration)
    if max_duration != 1e-6:  # the arguments know no rate; a microsecond is a duration there
        with pytest.raises(error, match=r"max_duration"):
            DataArguments(max_duration=max_duration)
        with pytest.raises(error, match=r"eval_max_duration"):
            DataArguments(eval_max_duration=max_duration)
    with pytest.raises(ValueError, match=r"DecodeAndCrop\.sampling_rate"):
        DecodeAndCrop(0, max_duration=1.0)


@pytest.mark.parametrize(
    "label, expected",
    [
        (3, r"'label' 3 .* 0\.\.2 \(num_labels=3\)"),
        (-1, r"'label' -1 .*\(-1 is how datasets marks a missing"),
    ],
)
def test_a_label_outside_the_models_classes_names_the_example_and_the_range(
    write_wav, tester, label, expected
):
    path = str(write_wav("l.wav"))
    collator = DataCollatorForAudioText(tester.processor, num_labels=3)
    examples = [
        {"id": "ok", "audio": path, "text": "a", "label": 2},
        {"id": "u7", "audio": path, "text": "b"},
    ]
    examples[1]["label"] = label
    with pytest.raises(ValueError, match=rf"example u7: {expected}"):
        collator(examples)
    if label < 0:  # negative labels are never classes, whatever the collator knows
        with pytest.raises(ValueError, match="example u7"):
            DataCollatorForAudioText(tester.processor)(examples)
    with pytest.raises(ValueError, match="num_labels"):
        DataCollatorForAudioText(tester.processor, num_labels=0)


def test_integer_pcm_is_scaled_by_the_split_transform_the_collator_and_the_processor(tester):
    floats = (0.5 * np.sin(np.arange(8000) / 7)).astype(np.float32)
    pcm = np.round(floats * 32768).astype(np.int16)
    row = {"audio": [{"array": pcm, "sampling_rate": 16000}]}
    np.testing.assert_allclose(DecodeAndCrop(16000)(row)["audio"][0], floats, atol=1e-4)
    tester.processor.feature_extractor.do_normalize = False  # show the samples as they arrive
    from_floats, from_pcm = (
        DataCollatorForAudioText(tester.processor)(
            [{"audio": {"array": a, "sampling_rate": 16000}, "text": "x"}]
        )
        for a in (floats, pcm)
    )
    torch.testing.assert_close(from_pcm["input_values"], from_floats["input_values"], atol=1e-4, rtol=0)
    direct = tester.processor(audio=[pcm], sampling_rate=16000)["input_values"]
    torch.testing.assert_close(direct, from_floats["input_values"], atol=1e-4, rtol=0)


# -- the processor: rates, empty inputs, transcripts longer than the text encoder ------------------
@pytest.mark.parametrize("rate", [0, -8000, float("nan"), 16000.5])
def test_processor_refuses_an_unusable_sampling_rate_instead_of_assuming_its_own(tester, rate):
    with pytest.raises(ValueError, match=rf"TurboProcessor's sampling_rate .*got {rate!r}"):
        tester.processor(audio=[np.zeros(1600, np.float32)], sampling_rate=rate)


@pytest.mark.parametrize("empty", ["audio", "text"])
def test_processor_refuses_an_empty_batch_naming_it(tester, empty):
    inputs = {"audio": tester.waveforms([0.5]), "text": ["hello"], empty: []}
    with pytest.raises(ValueError, match=rf"`{empty}` is an empty list"):
        tester.processor(**inputs, sampling_rate=16000)


def test_processor_truncates_transcripts_to_what_the_text_encoder_takes(tmp_path, tester):
    from turbo_hf.testing.tiny_encoders import save_tiny_audio_encoder, save_tiny_text_encoder

    audio_dir, text_dir = save_tiny_audio_encoder(tmp_path / "a"), save_tiny_text_encoder(tmp_path / "t")
    processor = TurboProcessor.from_encoders_pretrained(str(audio_dir), str(text_dir))
    model = TurboForAudioTextClassification.from_encoders_pretrained(
        str(audio_dir), str(text_dir), num_labels=2
    )
    positions = model.config.text_config.max_position_embeddings
    words = " ".join(["hello"] * 1_000)  # the campaign used 10,000; 1,000 already overflow 130 positions
    inputs = processor(audio=tester.waveforms([0.5]), text=[words], sampling_rate=16000)
    assert inputs["input_ids"].shape[1] <= positions
    model.eval()(**inputs)  # no size mismatch in the text encoder's position table
    assert processor(text=[words], truncation=False)["input_ids"].shape[1] > positions  # the opt-out
    assert processor(text=[words], max_length=16)["input_ids"].shape[1] == 16
    # A tokenizer's own limit (as a trained model's processor saves it) is the default too.
    tester.processor.tokenizer.model_max_length = 32
    assert tester.processor(text=[words])["input_ids"].shape[1] == 32


@pytest.mark.parametrize(
    "length, error",
    [(0, ValueError), (2, ValueError), (-1, ValueError), ("128", TypeError), (2.5, TypeError)],
)
def test_a_text_length_that_leaves_no_room_for_a_word_is_refused_where_it_is_given(tester, length, error):
    # BERT's tokenizer adds [CLS] and [SEP]: 2 tokens hold no word, and tokenizers would keep the whole text.
    with pytest.raises(error, match=r"DataCollatorForAudioText\.max_text_length"):
        DataCollatorForAudioText(tester.processor, max_text_length=length)
    with pytest.raises(error, match=r"max_length"):
        tester.processor(text=["hello world"], max_length=length)
    assert tester.processor(text=["hello world"], max_length=3)["input_ids"].shape[1] == 3


@pytest.mark.parametrize("text", [float("nan"), 3, b"bytes", ["hello", "world"]])
def test_a_transcript_that_is_not_a_string_names_the_example(tester, text):
    examples = [
        {"id": "u1", "audio": tester.waveforms([0.5])[0], "text": "fine", "label": 0},
        {"id": "u2", "audio": tester.waveforms([0.5])[0], "text": text, "label": 1},
    ]
    with pytest.raises(TypeError, match=r"example u2: a transcript must be a string"):
        DataCollatorForAudioText(tester.processor)(examples)
    with pytest.raises(TypeError, match=r"text\[1\]: a transcript must be a string"):
        tester.processor(text=["fine", text])


def test_a_misspelt_label_column_is_named_not_taken_for_prediction(tester):
    examples = [{"audio": tester.waveforms([0.5])[0], "text": "hi", "label": 1}]
    with pytest.raises(
        KeyError, match=r"no example of the batch has a 'labels' field, but they have 'label'"
    ):
        DataCollatorForAudioText(tester.processor, label_column="labels")(examples)
    # Examples without any label field are for prediction.
    unlabelled = [{"audio": tester.waveforms([0.5])[0], "text": "hi", "id": "u1"}]
    assert "labels" not in DataCollatorForAudioText(tester.processor)(unlabelled)


def test_a_torch_waveform_is_taken_as_decoded_like_a_numpy_one(tester):
    waveform = tester.waveforms([0.5])[0]
    collator = DataCollatorForAudioText(tester.processor)
    from_numpy = collator([{"audio": waveform, "text": "hi", "label": 0}])
    from_torch = collator([{"audio": torch.from_numpy(waveform), "text": "hi", "label": 0}])
    torch.testing.assert_close(from_numpy["input_values"], from_torch["input_values"])


def test_decode_and_crop_names_a_missing_column_a_short_id_list_and_a_non_bool_random_crop(write_wav):
    path = str(write_wav("a.wav", seconds=0.5))
    with pytest.raises(KeyError, match=r"no 'audio' column; found \['wav'\]"):
        DecodeAndCrop(16000)({"wav": [path]})
    with pytest.raises(ValueError, match=r"2 'audio' values but 1 'id' values"):
        DecodeAndCrop(16000)({"audio": [path, path], "id": ["u1"]})
    with pytest.raises(TypeError, match=r"random_crop must be True or False; got 'no'"):
        DecodeAndCrop(16000, random_crop="no")
