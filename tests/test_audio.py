"""load_audio on real files: any channel count, rate or container in, mono 16 kHz float32 out."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from turbo_hf.audio import AudioDecodingError, audio_duration, load_audio


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
