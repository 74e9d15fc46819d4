"""Iris texture field of the official code (`config_hash.json`): a 2D multiresolution hash grid
(16 levels x 2 features, table 2^15, base resolution 16, per-level scale 1.5) followed by a
fully-fused MLP (2 hidden layers of 64, ReLU, linear output, no biases), on texture coordinates
in [0, 1]^2. The official code runs tiny-cuda-nn; `HashGrid2D` is a pure-PyTorch grid with
tiny-cuda-nn's indexing (level resolution, dense/hashed levels, coherent prime hash, the +0.5
offset), used on CPU and whenever tcnn is absent. Shapes: N points, L levels, F features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

PRIMES = (1, 2654435761)  # tiny-cuda-nn's coherent prime hash, first two dimensions


@dataclass(frozen=True)
class TextureArch:
    num_levels: int = 16
    features_per_level: int = 2
    log2_hashmap_size: int = 15
    base_resolution: int = 16
    per_level_scale: float = 1.5
    hidden: int = 64
    hidden_layers: int = 2
    implementation: str = "torch"  # torch | tcnn (CUDA only)

    def tcnn_config(self) -> dict:
        return {
            "encoding": {"otype": "HashGrid", "n_levels": self.num_levels,
                         "n_features_per_level": self.features_per_level,
                         "log2_hashmap_size": self.log2_hashmap_size,
                         "base_resolution": self.base_resolution,
                         "per_level_scale": self.per_level_scale},
            "network": {"otype": "FullyFusedMLP", "activation": "ReLU", "output_activation": "None",
                        "n_neurons": self.hidden, "n_hidden_layers": self.hidden_layers},
        }


def level_layout(arch: TextureArch) -> list[tuple[float, int, int, bool]]:
    """Per level (scale, resolution, table size, hashed) as tiny-cuda-nn computes them:
    scale = base * per_level_scale^l - 1, resolution = ceil(scale) + 1, table size =
    min(resolution^2 rounded up to a multiple of 8, 2^log2_hashmap_size)."""
    out, cap = [], 2**arch.log2_hashmap_size
    for level in range(arch.num_levels):
        scale = arch.base_resolution * 2.0 ** (level * math.log2(arch.per_level_scale)) - 1.0
        res = int(math.ceil(scale)) + 1
        dense = (res * res + 7) // 8 * 8
        out.append((scale, res, min(dense, cap), dense > cap))
    return out


class HashGrid2D(nn.Module):
    """Pure-PyTorch 2D hash-grid encoding with tiny-cuda-nn semantics. x [N, 2] in [0, 1] ->
    features [N, L * F] (bilinear interpolation of the 4 cell corners per level)."""

    def __init__(self, arch: TextureArch) -> None:
        super().__init__()
        self.layout = level_layout(arch)
        self.features = arch.features_per_level
        sizes = [size for _, _, size, _ in self.layout]
        self.register_buffer("offsets", torch.tensor([0] + sizes).cumsum(0), persistent=False)
        # tiny-cuda-nn initialises the grid uniformly in [-1e-4, 1e-4]
        self.table = nn.Parameter((torch.rand(sum(sizes), self.features) * 2 - 1) * 1e-4)

    def out_dim(self) -> int:
        return len(self.layout) * self.features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] == 2, x.shape
        feats = []
        for level, (scale, res, size, hashed) in enumerate(self.layout):
            pos = x * scale + 0.5  # [N, 2]
            cell = torch.floor(pos)
            frac = pos - cell  # [N, 2]
            cell = cell.long()
            level_feat = 0.0
            for dx in (0, 1):
                for dy in (0, 1):
                    cx, cy = cell[:, 0] + dx, cell[:, 1] + dy
                    if hashed:
                        index = (cx * PRIMES[0]) ^ (cy * PRIMES[1])
                    else:
                        index = cx + cy * res
                    index = torch.remainder(index, size) + self.offsets[level]  # [N]
                    wx = frac[:, 0] if dx else 1 - frac[:, 0]
                    wy = frac[:, 1] if dy else 1 - frac[:, 1]
                    level_feat = level_feat + (wx * wy)[:, None] * self.table[index]  # [N, F]
            feats.append(level_feat)
        return torch.cat(feats, dim=-1)  # [N, L * F]


def _reference_hash_grid(grid: HashGrid2D, point: list[float]) -> list[float]:
    """One point, plain loops: the slow oracle of HashGrid2D.forward."""
    out = []
    for level, (scale, res, size, hashed) in enumerate(grid.layout):
        px, py = point[0] * scale + 0.5, point[1] * scale + 0.5
        x0, y0 = math.floor(px), math.floor(py)
        feat = [0.0] * grid.features
        for cx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
            for cy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                if hashed:
                    idx = ((cx * PRIMES[0]) ^ (cy * PRIMES[1])) % size
                else:
                    idx = (cx + cy * res) % size
                row = grid.table[int(grid.offsets[level]) + idx].tolist()
                feat = [f + wx * wy * v for f, v in zip(feat, row)]
        out += feat
    return out


class IrisTexture(nn.Module):
    """T(u): texture coordinates [N, 2] in [0, 1] -> rgb [N, 3] (linear output, Sec. 3.2)."""

    def __init__(self, arch: TextureArch) -> None:
        super().__init__()
        self.implementation = arch.implementation
        if arch.implementation == "tcnn":
            try:
                import tinycudann as tcnn
            except ImportError as err:
                raise ImportError(
                    "texture implementation 'tcnn' needs tiny-cuda-nn (GPU only); use 'torch'"
                ) from err
            self.net = tcnn.NetworkWithInputEncoding(
                n_input_dims=2, n_output_dims=3, encoding_config=arch.tcnn_config()["encoding"],
                network_config=arch.tcnn_config()["network"])
        else:
            self.encoding = HashGrid2D(arch)
            layers: list[nn.Module] = []
            width = self.encoding.out_dim()
            for _ in range(arch.hidden_layers):  # tiny-cuda-nn MLPs have no biases
                layers += [nn.Linear(width, arch.hidden, bias=False), nn.ReLU()]
                width = arch.hidden
            layers.append(nn.Linear(width, 3, bias=False))
            self.mlp = nn.Sequential(*layers)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        if self.implementation == "tcnn":
            return self.net(coords).float()
        return self.mlp(self.encoding(coords))
