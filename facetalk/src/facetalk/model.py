"""FaceTalk networks (Sec. 3): audio encoder + transformer denoiser over expression-code sequences.

Shapes: B batch, T motion frames, E expression-code size, I identity-code size, D model width.

Denoiser: the noisy expression sequence x_t is embedded per frame (expression encoder, a linear
map), gets a sinusoidal frame position, the diffusion-timestep embedding and the identity/style
embedding added, and runs through a transformer decoder whose self-attention mixes frames and
whose cross-attention reads the wav2vec 2.0 features under an alignment mask (frame i sees audio
frames [i - w, i + w], w = 0 being FaceFormer's diagonal alignment bias). Classifier-free
guidance replaces the audio features with a learned null token. The regression baseline
(`method="regression"`) is the same network fed x_t = 0 and t = 0, trained to output x0 directly.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

from .audio import AudioEncoder


def sinusoidal_positions(frames: int, dim: int, device: torch.device) -> torch.Tensor:
    """Fixed sinusoidal frame positions [T, D] (Vaswani et al.)."""
    pos = torch.arange(frames, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device) * (-math.log(10000.0) / dim))
    out = torch.zeros(frames, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return out


def attention_masks(frames: int, window: int, causal: bool,
                    device: torch.device) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Self-attention mask [T, T] (None = full) and audio alignment mask [T, T] (True = blocked).

    Frame i may cross-attend audio frame j iff |i - j| <= window (and j <= i when causal).
    """
    i = torch.arange(frames, device=device)[:, None]
    j = torch.arange(frames, device=device)[None, :]
    cross = (i - j).abs() > window
    self_mask = None
    if causal:
        self_mask = j > i
        cross = cross | (j > i)
    return self_mask, cross


class Denoiser(nn.Module):
    """Transformer denoiser D(x_t, t, audio, z_id) -> x0 (or epsilon) prediction.

    Args:
        exp_dim: E; id_dim: I; dim: D; layers/heads/ff: transformer sizes.
        causal: causal self-attention (and causal audio alignment).
        audio_window: alignment half-width w of the audio cross-attention.
        id_cond: add the identity/style embedding.
    """

    def __init__(self, exp_dim: int, id_dim: int, dim: int = 64, layers: int = 2, heads: int = 4,
                 ff: int = 128, dropout: float = 0.0, causal: bool = False,
                 audio_window: int = 0, id_cond: bool = True) -> None:
        super().__init__()
        self.exp_dim, self.dim = exp_dim, dim
        self.causal, self.audio_window, self.id_cond = causal, audio_window, id_cond
        self.exp_in = nn.Linear(exp_dim, dim)  # expression encoder
        self.time_proj = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_mlp = TimestepEmbedding(dim, dim)
        self.id_in = nn.Linear(id_dim, dim) if id_cond else None
        self.null_audio = nn.Parameter(torch.zeros(dim))  # classifier-free guidance token
        layer = nn.TransformerDecoderLayer(dim, heads, ff, dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, exp_dim))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                id_code: torch.Tensor, drop_audio: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the clean sequence (or the noise) from a noisy one.

        Args:
            x_t: [B, T, E] noisy (normalised) expression codes.
            t: [B] integer diffusion timesteps.
            audio: [B, T, D] frame-aligned audio features.
            id_code: [B, I] identity codes.
            drop_audio: [B] bool, True = use the null audio token (unconditional).
        Returns:
            [B, T, E].
        """
        b, frames, e = x_t.shape
        assert e == self.exp_dim, (x_t.shape, self.exp_dim)
        assert audio.shape == (b, frames, self.dim), (audio.shape, x_t.shape)
        h = self.exp_in(x_t) + sinusoidal_positions(frames, self.dim, x_t.device)  # [B, T, D]
        cond = self.time_mlp(self.time_proj(t).to(h.dtype))  # [B, D]
        if self.id_in is not None:
            cond = cond + self.id_in(id_code)
        h = h + cond[:, None]
        if drop_audio is not None:
            audio = torch.where(drop_audio[:, None, None], self.null_audio.to(audio.dtype), audio)
        self_mask, cross_mask = attention_masks(frames, self.audio_window, self.causal, h.device)
        h = self.decoder(h, audio, tgt_mask=self_mask, memory_mask=cross_mask)  # [B, T, D]
        return self.out(h)


class FaceTalkModel(nn.Module):
    """Audio encoder + denoiser + expression-code normalisation statistics.

    `code_mean`/`code_std` [E] map codes to the unit-scale space the diffusion runs in; they are
    set from the training data before training and saved in the checkpoint.
    """

    def __init__(self, exp_dim: int, id_dim: int, dim: int, layers: int, heads: int, ff: int,
                 dropout: float, causal: bool, audio_window: int, id_cond: bool,
                 audio_path: str = "", audio_hidden: int = 48, audio_layers: int = 2,
                 audio_train: bool = True) -> None:
        super().__init__()
        self.audio_encoder = AudioEncoder(dim, audio_path, audio_hidden, audio_layers, audio_train)
        self.denoiser = Denoiser(exp_dim, id_dim, dim, layers, heads, ff, dropout, causal,
                                 audio_window, id_cond)
        self.register_buffer("code_mean", torch.zeros(exp_dim))
        self.register_buffer("code_std", torch.ones(exp_dim))

    def normalize(self, codes: torch.Tensor) -> torch.Tensor:
        return (codes - self.code_mean) / self.code_std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.code_std + self.code_mean

    def guided(self, x_t: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
               id_code: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance: uncond + scale * (cond - uncond); scale 1 = conditional."""
        b = x_t.shape[0]
        keep = torch.zeros(b, dtype=torch.bool, device=x_t.device)
        if scale == 1.0:
            return self.denoiser(x_t, t, audio, id_code, keep)
        both = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([audio, audio]),
                             torch.cat([id_code, id_code]), torch.cat([keep, ~keep]))
        cond, uncond = both[:b], both[b:]
        return uncond + scale * (cond - uncond)


def build_model(cfg) -> FaceTalkModel:
    """Rebuild the model from a Config (or a checkpoint's config)."""
    return FaceTalkModel(cfg.data_exp_dim, cfg.data_id_dim, cfg.model_dim, cfg.model_layers,
                         cfg.model_heads, cfg.model_ff, cfg.model_dropout, cfg.model_causal,
                         cfg.model_audio_window, cfg.model_id_cond, cfg.audio_encoder_path,
                         cfg.audio_hidden, cfg.audio_layers, cfg.audio_train_encoder)
