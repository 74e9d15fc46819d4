import logging

import numpy as np
import pytest
import torch

from facetalk.audio import (
    AudioEncoder,
    frame_energy,
    interpolate_features,
    num_frames,
    prepare_waveform,
)


def test_num_frames_closed_form():
    assert num_frames(32000, 16000, 25) == 50  # 2.0 s at 25 fps
    assert num_frames(44100 * 3, 44100, 30) == 90
    assert num_frames(16000 + 639, 16000, 25) == 25  # a partial frame is not counted
    assert num_frames(16000 + 640, 16000, 25) == 26


def test_resampling_keeps_duration_and_logs(caplog):
    wave = np.sin(np.linspace(0, 200, 44100 * 2)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="facetalk.audio"):
        out = prepare_waveform(wave, 44100, 16000, 25)
    assert len(out) == 32000 and num_frames(len(out), 16000, 25) == 50
    assert "resampled 44100 Hz -> 16000 Hz" in caplog.text


def test_stereo_int16_is_averaged_to_mono(caplog):
    left = np.full(16000, 16384, np.int16)
    stereo = np.stack([left, np.zeros_like(left)], 1)  # [S, 2] as scipy returns it
    with caplog.at_level(logging.WARNING, logger="facetalk.audio"):
        out = prepare_waveform(stereo, 16000, 16000, 25)
    assert out.shape == (16000,)
    np.testing.assert_allclose(out, 0.25, atol=1e-4)
    assert "averaged to mono" in caplog.text


@pytest.mark.parametrize("length", [0, 100, 1279])
def test_empty_or_too_short_clip_raises(length):
    with pytest.raises(ValueError, match="too short"):
        prepare_waveform(np.zeros(length, np.float32), 16000, 16000, 25)


def test_interpolation_endpoints_and_linearity():
    feats = torch.tensor([[[0.0], [1.0], [2.0]]])  # [1, L=3, 1], linear ramp
    out = interpolate_features(feats, 5)
    torch.testing.assert_close(out[0, :, 0], torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0]))


def test_frame_energy_of_constant_signal():
    energy = frame_energy(torch.full((16000,), 0.5), 16000, 25)
    assert energy.shape == (25,)
    torch.testing.assert_close(energy, torch.full((25,), 0.5))


def test_audio_encoder_aligns_to_frames():
    enc = AudioEncoder(out_dim=24, hidden=16, layers=1)
    out = enc(torch.randn(2, 16000), frames=25)
    assert out.shape == (2, 25, 24)
    assert not any(p.requires_grad for p in enc.wav2vec.feature_extractor.parameters())


def test_missing_pretrained_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="Wav2Vec2Model"):
        AudioEncoder(out_dim=8, pretrained_path=str(tmp_path / "nope"))


def test_pretrained_path_round_trip(tmp_path):
    from transformers import Wav2Vec2Model

    from facetalk.audio import small_wav2vec2_config

    Wav2Vec2Model(small_wav2vec2_config(16, 1)).save_pretrained(tmp_path / "w2v")
    enc = AudioEncoder(out_dim=8, pretrained_path=str(tmp_path / "w2v"))
    assert enc.wav2vec.config.hidden_size == 16
