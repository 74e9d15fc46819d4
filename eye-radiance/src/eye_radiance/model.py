"""Learned parts: the scene radiance field, the iris texture field and the cornea pose corrections.

Shapes: N rays, S samples per ray, F frames, E eyes per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class FieldArch:
    """Scene field: nerfacto-style multi-resolution hash grid (nerfstudio, torch implementation
    on CPU) followed by small MLPs for density and colour."""

    aabb_min: tuple[float, float, float] = (-1000.0, -1000.0, -800.0)
    aabb_max: tuple[float, float, float] = (1000.0, 1000.0, 1200.0)
    num_levels: int = 8
    log2_hashmap_size: int = 15
    min_res: int = 8
    max_res: int = 256
    hidden: int = 32
    implementation: str = "torch"  # nerfstudio HashEncoding backend: torch (CPU) or tcnn


class SceneField(nn.Module):
    """sigma(x), rgb(x, d) of the world seen in the cornea reflections."""

    def __init__(self, arch: FieldArch) -> None:
        super().__init__()
        from nerfstudio.field_components.encodings import HashEncoding, SHEncoding

        self.register_buffer("aabb_min", torch.tensor(arch.aabb_min))
        self.register_buffer("aabb_max", torch.tensor(arch.aabb_max))
        self.encoding = HashEncoding(
            num_levels=arch.num_levels,
            min_res=arch.min_res,
            max_res=arch.max_res,
            log2_hashmap_size=arch.log2_hashmap_size,
            implementation=arch.implementation,
        )
        self.dir_encoding = SHEncoding(levels=3, implementation="torch")
        self.density_mlp = nn.Sequential(
            nn.Linear(self.encoding.get_out_dim(), arch.hidden),
            nn.ReLU(),
            nn.Linear(arch.hidden, 1 + arch.hidden),
        )
        self.color_mlp = nn.Sequential(
            nn.Linear(arch.hidden + self.dir_encoding.get_out_dim(), arch.hidden),
            nn.ReLU(),
            nn.Linear(arch.hidden, 3),
        )

    def forward(
        self, positions: torch.Tensor, directions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [..., 3] mm, directions [..., 3] unit -> density [..., 1], rgb [..., 3]."""
        x = (positions - self.aabb_min) / (self.aabb_max - self.aabb_min)  # [..., 3] in [0, 1]
        inside = ((x >= 0) & (x <= 1)).all(-1, keepdim=True)
        h = self.density_mlp(self.encoding(x.clamp(0, 1).reshape(-1, 3)))
        h = h.reshape(*x.shape[:-1], -1)
        density = torch.exp(h[..., :1] - 1.0) * inside  # truncated-exp style activation, 0 outside
        d = self.dir_encoding(directions.reshape(-1, 3)).reshape(
            *x.shape[:-1], -1
        )  # torch SH: unit dirs
        rgb = torch.sigmoid(self.color_mlp(torch.cat([h[..., 1:], d], dim=-1)))
        return density, rgb


class IrisTexture(nn.Module):
    """2D texture field T(u, v) of the iris, shared by all frames (one per eye), on the unit disc
    of the limbus plane: Fourier features + MLP -> rgb in [0, 1] (Sec. 3.2)."""

    def __init__(self, n_eyes: int = 2, n_freqs: int = 6, hidden: int = 64) -> None:
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freqs) * math.pi)
        self.eye_embedding = nn.Embedding(n_eyes, 8)
        self.mlp = nn.Sequential(
            nn.Linear(2 + 4 * n_freqs + 8, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 3),
        )

    def forward(self, uv: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        """uv [N, 2] in limbus radii, eye [N] int -> rgb [N, 3]."""
        ang = uv[..., None] * self.freqs  # [N, 2, F]
        feats = torch.cat(
            [uv, ang.sin().flatten(1), ang.cos().flatten(1), self.eye_embedding(eye)], dim=-1
        )
        return torch.sigmoid(self.mlp(feats) - 2.0)  # starts dark: reflections explain first


class PoseCorrections(nn.Module):
    """Per frame and eye an SE(3) correction (omega, t) [F, E, 6], initialised to zero."""

    def __init__(self, n_frames: int, n_eyes: int) -> None:
        super().__init__()
        self.delta = nn.Parameter(torch.zeros(n_frames, n_eyes, 6))

    def forward(self, frame: torch.Tensor, eye: torch.Tensor) -> torch.Tensor:
        return self.delta[frame, eye]  # [N, 6]
