"""The five radiance-field families of the paper (Sec. 5), each with its published density
heuristic (baseline) or the paper's recipe (log-space density + high-transmittance init).

Pure PyTorch, CPU-friendly re-implementations at small size:
  vanilla_nerf  positional encoding + MLP, ReLU density (+ optional raw noise)   [Mildenhall 20]
  tensorf       VM-decomposed density/appearance, softplus(raw - 10), distances x 25   [Chen 22]
  dvgo          dense density grid, softplus(raw + act_shift(alpha_init)), voxel-unit
                intervals, feature grid + small MLP                                [Sun 22]
  plenoxels     dense grid of density + SH coefficients, ReLU density, init 0.1   [Fridovich-Keil 22]
  nerfacto      multi-resolution hash grid + MLP, trunc_exp density               [Tancik 23]
With `recipe=True` every family instead outputs log sigma = raw + x0 (render.DensityActivation
"log" mode) with x0 = log(-log T0) - log L (Sec. 4.2), and raw starts at ~0.

Shape legend: R rays, S samples per ray, P = R*S points, D feature width.
Positions are normalised by the scene's bounding box (which scales with k) before encoding, so
the encodings see the same coordinates at every k; only distances and densities scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .render import (
    DEFAULT_TARGET_TRANSMITTANCE,
    DensityActivation,
    composite,
    init_log_density,
    stratified_samples,
)

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)


# ----------------------------------------------------------------------------- encodings


def positional_encoding(x: Tensor, num_freqs: int) -> Tensor:
    """NeRF's gamma(x) = [x, sin(2^l pi x), cos(2^l pi x)]: [..., 3] -> [..., 3 + 6L]."""
    freqs = (2.0 ** torch.arange(num_freqs, device=x.device, dtype=x.dtype)) * math.pi
    xf = x[..., None, :] * freqs[:, None]  # [..., L, 3]
    return torch.cat([x, torch.sin(xf).flatten(-2), torch.cos(xf).flatten(-2)], -1)


def sh_basis_deg2(dirs: Tensor) -> Tensor:
    """Real spherical harmonics up to degree 2: unit dirs [..., 3] -> [..., 9]."""
    x, y, z = dirs.unbind(-1)
    return torch.stack([
        torch.full_like(x, SH_C0), -SH_C1 * y, SH_C1 * z, -SH_C1 * x,
        SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * z * z - x * x - y * y),
        SH_C2[3] * x * z, SH_C2[4] * (x * x - y * y)], -1)


def grid_lookup(grid: Tensor, x: Tensor) -> Tensor:
    """Trilinear interpolation of a dense grid [1, C, G, G, G] at x [P, 3] in [-1, 1] -> [P, C].

    grid_sample's (x, y, z) indexes the (W, H, D) axes.
    """
    out = F.grid_sample(grid, x.view(1, -1, 1, 1, 3), mode="bilinear", align_corners=True,
                        padding_mode="border")  # [1, C, P, 1, 1]
    return out.view(grid.shape[1], -1).T


class HashEncoding(nn.Module):
    """Multi-resolution hash encoding (Instant-NGP), pure PyTorch (nerfstudio's "torch"
    fallback does the same): x [P, 3] in [0, 1] -> [P, levels * 2]."""

    PRIMES = (1, 2654435761, 805459861)

    def __init__(self, levels: int, log2_size: int, min_res: int = 16, max_res: int = 256,
                 features: int = 2) -> None:
        super().__init__()
        growth = math.exp((math.log(max_res) - math.log(min_res)) / max(levels - 1, 1))
        self.register_buffer("res", torch.tensor([math.floor(min_res * growth ** i)
                                                  for i in range(levels)]), persistent=False)
        self.size = 2 ** log2_size
        self.table = nn.Parameter(torch.empty(levels, self.size, features).uniform_(-1e-4, 1e-4))
        corners = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])
        self.register_buffer("corners", corners, persistent=False)  # [8, 3]

    def forward(self, x: Tensor) -> Tensor:
        """x [P, 3] in [0, 1] -> features [P, L*F]: per axis, the two corner coordinates' hash
        terms and weights are formed once and combined for the 8 corners (as the reference)."""
        scaled = x[:, None, :] * self.res[None, :, None].to(x.dtype)  # [P, L, 3]
        base = torch.floor(scaled).long()
        frac = scaled - base  # [P, L, 3]
        primes = torch.tensor(self.PRIMES, device=x.device)
        terms = torch.stack([base * primes, (base + 1) * primes], -1)  # [P, L, 3, 2]
        wts = torch.stack([1 - frac, frac], -1)  # [P, L, 3, 2]
        hashed = (terms[:, :, 0, :, None, None] ^ terms[:, :, 1, None, :, None]
                  ^ terms[:, :, 2, None, None, :]).flatten(2) % self.size  # [P, L, 8]
        w = (wts[:, :, 0, :, None, None] * wts[:, :, 1, None, :, None]
             * wts[:, :, 2, None, None, :]).flatten(2)  # [P, L, 8]
        levels, size, feats = self.table.shape
        offset = torch.arange(levels, device=x.device)[None, :, None] * size
        gathered = self.table.view(-1, feats)[(hashed + offset).view(-1)]  # [P*L*8, F]
        gathered = gathered.view(*hashed.shape, feats)  # [P, L, 8, F]
        return (w[..., None] * gathered).sum(2).flatten(1)  # [P, L*F]

    def _reference_forward(self, x: Tensor) -> Tensor:
        """Slow, obviously correct version: each of the 8 corners hashed and weighted in turn."""
        scaled = x[:, None, :] * self.res[None, :, None].to(x.dtype)  # [P, L, 3]
        base = torch.floor(scaled).long()
        frac = scaled - base
        level = torch.arange(self.table.shape[0], device=x.device)[None, :]  # [1, L]
        out = 0
        for corner in self.corners:  # (i, j, k) in {0, 1}^3
            idx = base + corner  # [P, L, 3]
            h = ((idx[..., 0] * self.PRIMES[0]) ^ (idx[..., 1] * self.PRIMES[1])
                 ^ (idx[..., 2] * self.PRIMES[2])) % self.size  # [P, L]
            w = torch.where(corner.bool(), frac, 1 - frac).prod(-1)  # [P, L]
            out = out + w[..., None] * self.table[level.expand_as(h), h]  # [P, L, F]
        return out.flatten(1)


def mlp(d_in: int, width: int, d_out: int, hidden_layers: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(hidden_layers):
        layers += [nn.Linear(d_in if i == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width if hidden_layers else d_in, d_out))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------- fields
# Each field maps normalised points xn [P, 3] in [-1, 1] and unit dirs [P, 3] to
# (raw density [P], rgb [P, 3]).


class VanillaNeRFField(nn.Module):
    def __init__(self, width: int, depth: int, pe_freqs: int) -> None:
        super().__init__()
        self.pe_freqs = pe_freqs
        d_pos = 3 + 6 * pe_freqs
        self.trunk = mlp(d_pos, width, width, depth - 1)
        self.density = nn.Linear(width, 1)
        self.color = mlp(width + 3 + 6 * 4, width // 2, 3, 1)

    def forward(self, xn: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        h = F.relu(self.trunk(positional_encoding(xn, self.pe_freqs)))  # [P, W]
        rgb = torch.sigmoid(self.color(torch.cat([h, positional_encoding(dirs, 4)], -1)))
        return self.density(h)[:, 0], rgb


class TensoRFField(nn.Module):
    """VM decomposition: sum_m plane_m(x_a, x_b) * line_m(x_c) over the 3 axis splits."""

    SPLITS = ((0, 1, 2), (0, 2, 1), (1, 2, 0))  # (plane axes, line axis)

    def __init__(self, res: int, rank: int, width: int, app_dim: int = 27) -> None:
        super().__init__()
        def planes(r: int) -> nn.ParameterList:
            return nn.ParameterList([nn.Parameter(0.1 * torch.randn(1, r, res, res))
                                     for _ in range(3)])

        def lines(r: int) -> nn.ParameterList:
            return nn.ParameterList([nn.Parameter(0.1 * torch.randn(1, r, res, 1))
                                     for _ in range(3)])
        self.den_planes, self.den_lines = planes(rank), lines(rank)
        self.app_planes, self.app_lines = planes(2 * rank), lines(2 * rank)
        self.basis = nn.Linear(3 * 2 * rank, app_dim, bias=False)
        self.color = mlp(app_dim + 3 + 6 * 2, width, 3, 2)

    def _vm(self, planes: nn.ParameterList, lines: nn.ParameterList, xn: Tensor) -> list[Tensor]:
        out = []
        for (a, b, c), plane, line in zip(self.SPLITS, planes, lines):
            pc = xn[:, [a, b]].view(1, -1, 1, 2)  # [1, P, 1, 2]
            lc = torch.stack([torch.zeros_like(xn[:, c]), xn[:, c]], -1).view(1, -1, 1, 2)
            pf = F.grid_sample(plane, pc, align_corners=True)[0, :, :, 0]  # [r, P]
            lf = F.grid_sample(line, lc, align_corners=True)[0, :, :, 0]  # [r, P]
            out.append((pf * lf).T)  # [P, r]
        return out

    def forward(self, xn: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        raw = torch.stack(self._vm(self.den_planes, self.den_lines, xn)).sum((0, 2))  # [P]
        app = self.basis(torch.cat(self._vm(self.app_planes, self.app_lines, xn), -1))
        rgb = torch.sigmoid(self.color(torch.cat([app, positional_encoding(dirs, 2)], -1)))
        return raw, rgb


class DVGOField(nn.Module):
    """Dense density grid + feature grid k0 + rgbnet on [k0, PE(dir)] (DVGO fine stage)."""

    def __init__(self, res: int, width: int, k0_dim: int = 12) -> None:
        super().__init__()
        self.density = nn.Parameter(torch.zeros(1, 1, res, res, res))
        self.k0 = nn.Parameter(torch.zeros(1, k0_dim, res, res, res))
        self.rgbnet = mlp(k0_dim + 3 + 6 * 4, width, 3, 2)

    def forward(self, xn: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        raw = grid_lookup(self.density, xn)[:, 0]
        feat = grid_lookup(self.k0, xn)
        return raw, torch.sigmoid(self.rgbnet(torch.cat([feat, positional_encoding(dirs, 4)], -1)))


class PlenoxelsField(nn.Module):
    """Dense grid of density and degree-2 SH coefficients; colour = max(SH(dir) + 0.5, 0)."""

    def __init__(self, res: int, init_density: float) -> None:
        super().__init__()
        self.density = nn.Parameter(torch.full((1, 1, res, res, res), float(init_density)))
        self.sh = nn.Parameter(torch.zeros(1, 27, res, res, res))

    def forward(self, xn: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        raw = grid_lookup(self.density, xn)[:, 0]
        coef = grid_lookup(self.sh, xn).view(-1, 3, 9)  # [P, 3, 9]
        rgb = torch.einsum("pcj,pj->pc", coef, sh_basis_deg2(dirs)) + 0.5
        return raw, rgb.clamp(0.0, 1.0)


class NerfactoField(nn.Module):
    """Hash grid -> MLP -> (raw density, 15-d geometry feature); colour MLP on [geo, SH(dir)]."""

    def __init__(self, levels: int, log2_size: int, max_res: int, width: int) -> None:
        super().__init__()
        self.encoding = HashEncoding(levels, log2_size, max_res=max_res)
        self.base = mlp(2 * levels, width, 16, 1)
        self.head = mlp(15 + 9, width, 3, 2)

    def forward(self, xn: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
        h = self.base(self.encoding((xn + 1) / 2))  # [P, 16]
        rgb = torch.sigmoid(self.head(torch.cat([h[:, 1:], sh_basis_deg2(dirs)], -1)))
        return h[:, 0], rgb


# ----------------------------------------------------------------------------- model


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a model (from Config + the scene's extent)."""

    family: str
    recipe: bool
    near: float
    far: float
    bbox: tuple[tuple[float, ...], tuple[float, ...]]
    num_samples: int = 64
    width: int = 64
    depth: int = 4
    pe_freqs: int = 6
    grid_res: int = 48
    tensorf_rank: int = 8
    hash_levels: int = 8
    hash_log2_size: int = 15
    hash_max_res: int = 256
    raw_noise_std: float = 0.0
    target_transmittance: float = DEFAULT_TARGET_TRANSMITTANCE
    white_bkgd: bool = True


def _baseline_activation(spec: ModelSpec) -> DensityActivation:
    """Each family's published density heuristic (Sec. 5 of the paper; the models' own code)."""
    if spec.family in ("vanilla_nerf", "plenoxels"):
        return DensityActivation("relu", raw_noise_std=spec.raw_noise_std)
    if spec.family == "tensorf":  # density_shift = -10, distance_scale = 25 (TensoRF defaults)
        return DensityActivation("softplus", shift=-10.0, distance_scale=25.0)
    if spec.family == "dvgo":  # alpha_init = 1e-6 (coarse stage), intervals in voxel units
        alpha_init = 1e-6
        voxel = (spec.bbox[1][0] - spec.bbox[0][0]) / (spec.grid_res - 1)
        return DensityActivation("softplus", shift=math.log(1 / (1 - alpha_init) - 1),
                                 distance_scale=1.0 / voxel)
    return DensityActivation("trunc_exp")  # nerfacto


def build_field(spec: ModelSpec) -> nn.Module:
    if spec.family == "vanilla_nerf":
        field = VanillaNeRFField(spec.width, spec.depth, spec.pe_freqs)
        if spec.recipe:  # raw ~ 0 at init so that x = x0 everywhere (Sec. 4.2)
            with torch.no_grad():
                field.density.weight.mul_(0.01)
                field.density.bias.zero_()
        return field
    if spec.family == "tensorf":
        return TensoRFField(spec.grid_res, spec.tensorf_rank, spec.width)
    if spec.family == "dvgo":
        return DVGOField(spec.grid_res, spec.width)
    if spec.family == "plenoxels":  # svox2 initialises density to 0.1; the recipe to raw = 0
        return PlenoxelsField(spec.grid_res, init_density=0.0 if spec.recipe else 0.1)
    if spec.family == "nerfacto":
        return NerfactoField(spec.hash_levels, spec.hash_log2_size, spec.hash_max_res, spec.width)
    raise ValueError(f"unknown model family {spec.family!r}")


class RadianceFieldModel(nn.Module):
    """Field + density activation + stratified sampler + compositor for one family."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.field = build_field(spec)
        if spec.recipe:
            x0 = init_log_density(spec.target_transmittance, spec.far - spec.near)
            self.activation = DensityActivation("log", offset=x0)
        else:
            self.activation = _baseline_activation(spec)
        self.register_buffer("bbox", torch.tensor(spec.bbox, dtype=torch.float32))

    def forward(self, rays_o: Tensor, rays_d: Tensor, perturb: bool = False,
                generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Render rays.

        Args:
            rays_o, rays_d: [R, 3] origins and unit directions (world, scaled by k).
        Returns:
            composite()'s dict (rgb [R, 3], depth [R], acc [R], weights [R, S], ...) plus
            raw [R, S] and tau [R, S].
        """
        assert rays_o.shape == rays_d.shape and rays_o.shape[-1] == 3, (rays_o.shape, rays_d.shape)
        num_rays, s = rays_o.shape[0], self.spec.num_samples
        near = torch.full((num_rays,), self.spec.near, device=rays_o.device)
        far = torch.full((num_rays,), self.spec.far, device=rays_o.device)
        t, delta = stratified_samples(near, far, s, perturb, generator)  # [R, S] x 2
        pts = rays_o[:, None] + t[..., None] * rays_d[:, None]  # [R, S, 3]
        lo, hi = self.bbox[0], self.bbox[1]
        xn = (pts - lo) / (hi - lo) * 2 - 1  # [R, S, 3] in [-1, 1] inside the box
        inside = (xn.abs() <= 1).all(-1)  # [R, S]
        dirs = rays_d[:, None].expand_as(pts)
        raw, rgb = self.field(xn.reshape(-1, 3).clamp(-1, 1), dirs.reshape(-1, 3))
        raw, rgb = raw.view(num_rays, s), rgb.view(num_rays, s, 3)
        tau = self.activation(raw, delta) * inside  # empty space outside the scene box
        out = composite(tau, rgb, t, background=1.0 if self.spec.white_bkgd else 0.0)
        out.update(raw=raw, tau=tau)
        return out

    def param_groups(self, lr: float, lr_grid: float) -> list[dict]:
        """Explicit grids / planes / hash tables get lr_grid, network weights get lr."""
        grid, net = [], []
        for name, p in self.named_parameters():
            is_grid = p.dim() >= 3 or name.endswith("table")
            (grid if is_grid else net).append(p)
        groups = [{"params": net, "lr": lr, "base_lr": lr}]
        if grid:
            groups.append({"params": grid, "lr": lr_grid, "base_lr": lr_grid})
        return groups
