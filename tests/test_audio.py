"""load_audio on real files: any channel count, rate or container in, mono 16 kHz float32 out."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from turbo_hf.audio import AudioDecodingError, audio_duration, crop_start, load_audio, load_window


@pytest.mark.parametrize("sampling_rate, channels", [(16000, 2), (8000, 1), (44100, 1), (44100, 2)])
def test_wav_becomes_mono_16k_float32(write_wav, sampling_rate, channels):
    path = write_wav("clip.wav", seconds=0.5, sampling_rate=sampling_rate, channels=channels)
    waveform = load_audio(path, 16000)
    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert waveform.shape[0] == 8000
    assert 0.25 < np.abs(waveform).max() < 0.35  # the 0.3-amplitude sine survives downmix and resampling


def test_stereo_is_the_channel_mean(tmp_path):
    left, right = np.full(1600, 0.2, np.float32), np.full(1600, -0.6, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav", 16000), -0.2, atol=1e-6)


@pytest.mark.parametrize("layout", ["samples_by_channels", "channels_by_samples"])
def test_in_memory_stereo_arrays_are_downmixed_in_either_layout(layout):
    stereo = np.stack([np.full(1600, 0.2, np.float32), np.full(1600, -0.6, np.float32)], axis=1)
    array = stereo if layout == "samples_by_channels" else stereo.T  # torchaudio / datasets: channels first
    for source in ((array, 16000), {"array": array, "sampling_rate": 16000}):
        waveform = load_audio(source, 16000)
        assert waveform.shape == (1600,)
        np.testing.assert_allclose(waveform, -0.2, atol=1e-6)


def test_flac_is_read(tmp_path):
    wave = (0.3 * np.sin(np.arange(11025) / 10)).astype(np.float32)
    sf.write(tmp_path / "clip.flac", wave, 22050)
    waveform = load_audio(str(tmp_path / "clip.flac"), 16000)
    assert waveform.dtype == np.float32 and waveform.shape == (8000,)
    assert audio_duration(tmp_path / "clip.flac") == pytest.approx(0.5)


def test_nan_file_is_rejected(tmp_path):
    sf.write(tmp_path / "nan.wav", np.full(100, np.nan, np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodingError, match=r"nan\.wav holds NaN"):
        load_audio(tmp_path / "nan.wav", 16000)


def test_empty_file_is_rejected(tmp_path):
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioDecodingError, match=r"empty\.wav is empty"):
        load_audio(tmp_path / "empty.wav", 16000)


def test_missing_file_is_rejected(tmp_path):
    with pytest.raises(AudioDecodingError, match=r"not found: .*gone\.wav"):
        load_audio(tmp_path / "gone.wav", 16000)


def test_garbage_bytes_are_rejected(tmp_path):
    (tmp_path / "junk.wav").write_bytes(b"\x00\x01garbage" * 50)
    with pytest.raises(AudioDecodingError, match=r"cannot decode audio .*junk\.wav"):
        load_audio(tmp_path / "junk.wav", 16000)
    with pytest.raises(AudioDecodingError, match=r"junk\.wav"):
        audio_duration(tmp_path / "junk.wav")


# -- sampling rates: a header or a field that cannot be a recording's rate is refused, naming it --
def wav_with_header_rate(path, header_rate: int, frames: int = 20000):
    """A 16-bit wav of `frames` samples whose header claims `header_rate` Hz (a damaged header)."""
    sf.write(path, np.zeros(frames, np.float32), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = header_rate.to_bytes(4, "little")  # fmt chunk: sample rate, then byte rate
    data[28:32] = (2 * header_rate).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("header_rate", [1, 999, 400_000, 2**31 - 1])
def test_a_header_that_lies_about_its_rate_is_refused_before_it_is_decoded(tmp_path, header_rate):
    path = wav_with_header_rate(tmp_path / "liar.wav", header_rate)
    expected = rf"liar\.wav.* {header_rate} Hz.*1000 to 384000 Hz"
    with pytest.raises(AudioDecodingError, match=expected):
        load_audio(path, 16000)
    with pytest.raises(AudioDecodingError, match=expected):
        audio_duration(path)
    with pytest.raises(AudioDecodingError, match=rf"bytes.* {header_rate} Hz"):
        load_audio(path.read_bytes(), 16000)


@pytest.mark.parametrize("rate", [1000, 8000, 384_000])
def test_rates_at_the_edges_of_the_accepted_range_are_read(tmp_path, rate):
    sf.write(tmp_path / "edge.wav", np.zeros(rate // 10, np.float32), rate)
    assert load_audio(tmp_path / "edge.wav", 16000).shape == (1600,)
    assert audio_duration(tmp_path / "edge.wav") == pytest.approx(0.1)


@pytest.mark.parametrize("rate", [None, 0, -16000, float("nan"), float("inf"), 16000.5, "16000", True, 500])
def test_an_audio_dict_or_tuple_with_an_unusable_rate_names_the_field(rate):
    array = np.zeros(1600, np.float32)
    with pytest.raises(
        AudioDecodingError, match=r"'sampling_rate'.*integer number of Hz from 1000 to 384000"
    ):
        load_audio({"array": array, "sampling_rate": rate}, 16000)
    with pytest.raises(AudioDecodingError, match=r"sampling rate of the \(array, sampling_rate\) tuple"):
        load_audio((array, rate), 16000)
    with pytest.raises(AudioDecodingError, match=r"sampling rate given with the audio array"):
        load_audio(array, 16000, source_sampling_rate=rate)


def test_an_integral_float_rate_is_a_rate():
    array = np.zeros(800, np.float32)
    assert load_audio({"array": array, "sampling_rate": np.float64(8000.0)}, 16000).shape == (1600,)
    assert load_audio((array, np.int32(8000)), 16000).shape == (1600,)


# -- integer PCM arrays are scaled to [-1, 1], as soundfile scales integer files ------------------
@pytest.mark.parametrize(
    "dtype, values, expected",
    [
        (np.int16, [-32768, 0, 16384, 32767], [-1.0, 0.0, 0.5, 32767 / 32768]),
        (np.int32, [-(2**31), 0, 2**30], [-1.0, 0.0, 0.5]),
        (np.int8, [-128, 64], [-1.0, 0.5]),
        (np.uint8, [0, 128, 192, 255], [-1.0, 0.0, 0.5, 127 / 128]),
    ],
)
def test_integer_pcm_arrays_are_scaled_to_the_unit_range(dtype, values, expected):
    array = np.array(values * 100, dtype=dtype)
    for source in ((array, 16000), {"array": array, "sampling_rate": 16000}, torch.from_numpy(array.copy())):
        if isinstance(source, torch.Tensor) and dtype in (np.uint8, np.int8):
            source = source.numpy()  # torch has uint8/int8 too; the numpy path is the one under test
        waveform = load_audio(source, 16000, source_sampling_rate=16000)
        assert waveform.dtype == np.float32
        np.testing.assert_allclose(waveform[: len(values)], expected, atol=1e-7)


def test_an_int16_file_and_the_same_samples_as_an_int16_array_agree(tmp_path):
    samples = (np.sin(np.arange(1600) / 5) * 20000).astype(np.int16)
    sf.write(tmp_path / "pcm.wav", samples, 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio((samples, 16000), 16000), load_audio(tmp_path / "pcm.wav", 16000))


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, np.bool_, np.complex64])
def test_arrays_of_an_ambiguous_sample_type_are_refused_naming_it(dtype):
    with pytest.raises(AudioDecodingError, match=rf"{np.dtype(dtype).name}.*float.*int16"):
        load_audio((np.zeros(100, dtype=dtype), 16000), 16000)


# -- a window (offset, max_duration) is read and resampled alone ---------------------------------
@pytest.fixture
def noise_wav(tmp_path):
    """10 s of noise at 44.1 kHz: any misplaced window shows, and resampling is not a no-op."""
    path = tmp_path / "noise.wav"
    sf.write(path, 0.3 * np.random.default_rng(0).standard_normal(441_000), 44100, subtype="FLOAT")
    return path


@pytest.fixture
def frames_read(monkeypatch):
    """The frames asked of soundfile and handed to soxr, per call."""
    counts = {"read": [], "resampled": []}
    read, resample = sf.SoundFile.read, soxr.resample

    def counting_read(self, frames=-1, *args, **kwargs):
        data = read(self, frames, *args, **kwargs)
        counts["read"].append(len(data))
        return data

    def counting_resample(x, *args, **kwargs):
        counts["resampled"].append(len(x))
        return resample(x, *args, **kwargs)

    monkeypatch.setattr(sf.SoundFile, "read", counting_read)
    monkeypatch.setattr(soxr, "resample", counting_resample)
    return counts


def test_a_window_is_read_and_resampled_without_the_rest_of_the_file(noise_wav, frames_read):
    whole = load_audio(noise_wav, 16000)
    assert frames_read["read"] == [441_000]
    frames_read["read"].clear(), frames_read["resampled"].clear()
    window = load_audio(noise_wav, 16000, offset=2.5, max_duration=1.0)
    assert window.shape == (16000,)
    # The same samples as cropping after resampling the whole file (soxr's filter sees its context).
    np.testing.assert_allclose(window, whole[40_000:56_000], atol=1e-5)
    # About one second of the ten was read and resampled (1 s + the filter's context, < 1.2 s).
    assert sum(frames_read["read"]) < 1.2 * 44100 and max(frames_read["resampled"]) < 1.2 * 44100


def test_load_window_crops_from_the_header_length_before_resampling(noise_wav, frames_read):
    whole = load_audio(noise_wav, 16000)
    frames_read["read"].clear(), frames_read["resampled"].clear()
    centre, length = load_window(noise_wav, 16000, 16000)
    assert length == whole.shape[0] == 160_000
    np.testing.assert_allclose(centre, whole[72_000:88_000], atol=1e-5)  # the centre, as evaluation crops
    assert sum(frames_read["read"]) < 1.2 * 44100 and max(frames_read["resampled"]) < 1.2 * 44100
    # A random window is drawn from the generator given, and is the same for the same seed.
    first, _ = load_window(noise_wav, 16000, 16000, random=True, generator=torch.Generator().manual_seed(4))
    again, _ = load_window(noise_wav, 16000, 16000, random=True, generator=torch.Generator().manual_seed(4))
    np.testing.assert_array_equal(first, again)
    start = crop_start(160_000, 16000, random=True, generator=torch.Generator().manual_seed(4))
    assert start != 72_000
    np.testing.assert_allclose(first, whole[start : start + 16000], atol=1e-5)
    # What fits is read whole, with no draw; None keeps everything.
    short, short_length = load_window((whole[:8000], 16000), 16000, 16000, random=True)
    np.testing.assert_array_equal(short, whole[:8000])
    assert short_length == 8000
    assert load_window(noise_wav, 16000, None)[0].shape == (160_000,)


def test_a_window_at_the_end_of_the_file_is_its_tail(noise_wav):
    whole = load_audio(noise_wav, 16000)
    tail = load_audio(noise_wav, 16000, offset=9.5, max_duration=1.0)
    np.testing.assert_allclose(tail, whole[152_000:], atol=1e-5)
    head = load_audio((whole, 16000), 16000, max_duration=0.25)
    np.testing.assert_array_equal(head, whole[:4000])


def test_an_offset_past_the_end_or_a_bad_window_is_refused_naming_the_argument(noise_wav):
    with pytest.raises(AudioDecodingError, match=r"noise\.wav.*offset 10\.0 s.*10\.0 s long"):
        load_audio(noise_wav, 16000, offset=10.0)
    for name, value in (
        ("offset", -1.0),
        ("offset", float("nan")),
        ("max_duration", 0),
        ("max_duration", -2.0),
    ):
        with pytest.raises(ValueError, match=rf"{name}.*got {value!r}"):
            load_audio(noise_wav, 16000, **{name: value})


# -- inputs that would be read as something they are not ---------------------------------------------
def test_float_samples_far_past_full_scale_are_unscaled_integers_and_refused():
    sine = (0.3 * np.sin(np.arange(16000) / 10)).astype(np.float32)
    as_float_int16 = (sine * 32767).round().astype(np.float64)
    with pytest.raises(AudioDecodingError, match=r"samples reach 9830.*divide int16 samples by 32768"):
        load_audio((as_float_int16, 16000), 16000)
    # The same samples as int16 are scaled, and float headroom a little past 1 is kept.
    np.testing.assert_allclose(load_audio((as_float_int16.astype(np.int16), 16000), 16000), sine, atol=1e-4)
    assert load_audio((1.5 * sine, 16000), 16000).max() == pytest.approx(0.45, abs=1e-3)
    # Standardised waveforms (unit variance, as feature extractors normalise) are kept as well.
    standardised = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 3
    np.testing.assert_array_equal(load_audio((standardised, 16000), 16000), standardised)


@pytest.mark.parametrize(
    "shape, message",
    [((2, 2), r"\(2, 2\) waveform is ambiguous"), ((64, 16000), r"64 channels .*a batch of waveforms")],
)
def test_2d_arrays_whose_channel_axis_cannot_be_told_are_refused(shape, message):
    with pytest.raises(AudioDecodingError, match=message):
        load_audio((np.full(shape, 0.1, np.float32), 16000), 16000)
    # (channels, samples) and (samples, channels) are both read as their channel mean.
    stereo = np.stack([np.full(1600, 0.2), np.full(1600, -0.6)]).astype(np.float32)
    np.testing.assert_allclose(load_audio((stereo, 16000), 16000), -0.2, atol=1e-6)
    np.testing.assert_allclose(load_audio((stereo.T, 16000), 16000), -0.2, atol=1e-6)


def test_an_empty_2d_array_is_empty_not_nan():
    with pytest.raises(AudioDecodingError, match=r"is empty \(shape \(0, 2\)\)"):
        load_audio((np.zeros((0, 2), np.float32), 16000), 16000)


def test_a_wav_file_cut_off_before_its_declared_data_is_named(tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, 0.1 * np.random.default_rng(0).standard_normal(160_000), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:32_004])
    for read in (lambda: audio_duration(cut), lambda: load_audio(cut, 16000)):
        with pytest.raises(
            AudioDecodingError, match=r"cut\.wav is cut off: its header declares 320000 bytes"
        ):
            read()
    assert audio_duration(whole) == 10.0


@pytest.mark.parametrize("declared", [0xFFFFFFFF, 0x7FFFFFFF])
def test_a_wav_written_by_a_streaming_writer_is_read(tmp_path, declared):
    """Writers that cannot seek back leave a placeholder as the data size: not a cut-off file."""
    path = tmp_path / "stream.wav"
    sf.write(path, np.full(1600, 0.1, np.float32), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = declared.to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert load_audio(path, 16000).shape == (1600,)


def test_a_wav_a_few_bytes_short_of_its_header_is_read(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.full(16000, 0.1, np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:-2])  # the last sample's bytes
    assert load_audio(path, 16000).shape == (15999,)


def test_a_folder_or_an_empty_path_is_named_as_such(tmp_path):
    with pytest.raises(AudioDecodingError, match=r"is a folder, not an audio file"):
        load_audio(tmp_path, 16000)
    with pytest.raises(AudioDecodingError, match=r"the audio path is empty"):
        load_audio("", 16000)


def test_a_dict_with_bytes_and_a_path_names_the_path_when_its_bytes_are_bad(tmp_path):
    with pytest.raises(AudioDecodingError, match=r"cannot decode audio clip\.wav"):
        load_audio({"path": "clip.wav", "bytes": b"not audio at all"}, 16000)
