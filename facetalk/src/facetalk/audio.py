"""Audio side of FaceTalk (Sec. 3): waveform loading, audio-to-frame alignment, wav2vec 2.0 encoder.

Shapes: B batch, S audio samples, L wav2vec frames (50 Hz), T motion frames, D feature width.

The encoder follows the FaceFormer-style recipe the paper builds on: a wav2vec 2.0 model (frozen
convolutional feature extractor, transformer optionally fine-tuned), whose 50 Hz hidden states are
linearly interpolated to the motion frame rate and projected to the denoiser width.
"""

from __future__ import annotations

import logging
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .runtime import DataError, MissingPathError

LOG = logging.getLogger("facetalk.audio")
MIN_FRAMES = 2  # a clip shorter than two motion frames carries no motion to learn or score


def num_frames(num_samples: int, sample_rate: int, fps: int) -> int:
    """Motion frames covered by a clip: floor(duration * fps), with exact integer arithmetic."""
    if num_samples < 0 or sample_rate <= 0 or fps <= 0:
        raise ValueError(f"bad sizes: samples={num_samples} rate={sample_rate} fps={fps}")
    return (num_samples * fps) // sample_rate


def samples_per_frame(sample_rate: int, fps: int) -> float:
    return sample_rate / fps


def prepare_waveform(wave: np.ndarray, sample_rate: int, target_rate: int, fps: int,
                     name: str = "audio") -> np.ndarray:
    """Mono float32 waveform at `target_rate`, checked to span at least MIN_FRAMES frames.

    Args:
        wave: [S] or [S, C] (channels last, as scipy reads wav) or [C, S] with C <= 8.
        sample_rate: rate of `wave` in Hz; resampled (polyphase) and logged when it differs.
    Returns:
        [S'] float32 in [-1, 1] for integer PCM input.
    """
    wave = np.asarray(wave)
    if wave.dtype.kind in "iu":  # integer PCM -> [-1, 1]
        info = np.iinfo(wave.dtype)
        wave = (wave.astype(np.float64) - (info.min + info.max + 1) / 2) / (info.max + 1)
    wave = wave.astype(np.float32)
    if wave.ndim == 2:  # stereo / multi-channel: average the channels
        channel_axis = 1 if wave.shape[1] <= 8 else 0
        LOG.warning("%s: %d channels averaged to mono", name, wave.shape[channel_axis])
        wave = wave.mean(axis=channel_axis)
    if wave.ndim != 1:
        raise DataError(f"{name}: expected a 1-D or 2-D waveform, got shape {wave.shape}")
    if sample_rate != target_rate:
        from scipy.signal import resample_poly

        ratio = Fraction(target_rate, sample_rate).limit_denominator(1000)
        LOG.warning("%s: resampled %d Hz -> %d Hz", name, sample_rate, target_rate)
        wave = resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)
    frames = num_frames(len(wave), target_rate, fps)
    if frames < MIN_FRAMES:
        raise DataError(f"{name}: clip too short ({len(wave)} samples = {frames} frames at "
                         f"{fps} fps; need >= {MIN_FRAMES})")
    if not np.all(np.isfinite(wave)):
        raise DataError(f"{name}: waveform has NaN/inf samples")
    return wave


def load_wav(path: str | Path, target_rate: int, fps: int) -> np.ndarray:
    """Read a .wav file (any PCM/float format scipy reads) as mono float32 at `target_rate`."""
    from scipy.io import wavfile

    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"audio file not found: {path}", "README 'Data layout'")
    try:
        rate, wave = wavfile.read(path)
    except (ValueError, EOFError, OSError) as err:  # scipy's errors for damaged .wav files
        raise DataError(f"{path} is not a readable .wav file ({type(err).__name__}: "
                        f"{str(err)[:120]})", "PCM or float WAV, README 'Data layout'") from err
    return prepare_waveform(wave, rate, target_rate, fps, name=str(path))


def frame_energy(wave: torch.Tensor, sample_rate: int, fps: int) -> torch.Tensor:
    """RMS energy per motion frame (used by the lip-sync correlation metric).

    Args:
        wave: [S] mono waveform.
    Returns:
        [T] with T = num_frames(S, sample_rate, fps).
    """
    frames = num_frames(wave.shape[-1], sample_rate, fps)
    hop = sample_rate / fps
    idx = (torch.arange(frames, device=wave.device) * hop).long()
    width = math.floor(hop)
    windows = wave[idx[:, None] + torch.arange(width, device=wave.device)[None]]  # [T, hop]
    return windows.pow(2).mean(-1).sqrt()


def interpolate_features(features: torch.Tensor, frames: int) -> torch.Tensor:
    """Linear interpolation along time, [B, L, D] -> [B, T, D] (FaceFormer-style resampling)."""
    assert features.dim() == 3, features.shape
    out = F.interpolate(features.transpose(1, 2), size=frames, mode="linear", align_corners=True)
    return out.transpose(1, 2)  # [B, T, D]


def small_wav2vec2_config(hidden: int, layers: int):
    """A small random-init wav2vec 2.0 config with the real 320-sample (50 Hz) CNN stride."""
    from transformers import Wav2Vec2Config

    heads = 4 if hidden % 4 == 0 else 1
    return Wav2Vec2Config(
        hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=2 * hidden, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, feat_proj_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0,
        do_stable_layer_norm=False, feat_extract_norm="group",
    )


class AudioEncoder(nn.Module):
    """wav2vec 2.0 (real weights from a local path, else a small random stand-in) + projection.

    Args:
        out_dim: denoiser width D.
        pretrained_path: folder with config.json + weights of a Wav2Vec2Model (e.g. a local copy
            of facebook/wav2vec2-base-960h); "" builds the random stand-in.
        train_encoder: fine-tune the transformer part; the CNN feature extractor is always frozen.
    """

    def __init__(self, out_dim: int, pretrained_path: str = "", hidden: int = 48,
                 layers: int = 2, train_encoder: bool = True) -> None:
        super().__init__()
        from transformers import Wav2Vec2Model

        if pretrained_path:
            if not Path(pretrained_path).is_dir():
                raise MissingPathError(f"audio_encoder_path {pretrained_path!r} is not a folder",
                                       "a Wav2Vec2Model folder: config.json + weights")
            try:
                self.wav2vec = Wav2Vec2Model.from_pretrained(pretrained_path,
                                                             local_files_only=True)
            except (OSError, ValueError) as err:
                raise DataError(f"audio_encoder_path {pretrained_path!r} holds no loadable "
                                f"Wav2Vec2Model ({type(err).__name__})",
                                "config.json + weights, README 'Pretrained parts'") from err
        else:
            self.wav2vec = Wav2Vec2Model(small_wav2vec2_config(hidden, layers))
        self.wav2vec.freeze_feature_encoder()
        if not train_encoder:
            self.wav2vec.requires_grad_(False)
        self.proj = nn.Linear(self.wav2vec.config.hidden_size, out_dim)

    def forward(self, wave: torch.Tensor, frames: int) -> torch.Tensor:
        """Encode audio to per-frame features.

        Args:
            wave: [B, S] mono 16 kHz waveform (zero-mean, unit-variance per clip is applied here,
                as wav2vec 2.0's feature extractor does).
            frames: T, the number of motion frames the clip covers.
        Returns:
            [B, T, D] audio features aligned to motion frames.
        """
        assert wave.dim() == 2, wave.shape
        wave = (wave - wave.mean(-1, keepdim=True)) / (wave.std(-1, keepdim=True) + 1e-5)
        hidden = self.wav2vec(wave).last_hidden_state  # [B, L, H], L ~ S / 320
        hidden = interpolate_features(hidden, frames)  # [B, T, H]
        return self.proj(hidden)
