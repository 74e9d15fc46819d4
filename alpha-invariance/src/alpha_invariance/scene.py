"""Procedural analytic scene: constant-density coloured spheres rendered exactly.

The default data of this subproject. Densities are piecewise constant along every ray, so the
volume-rendering integral has a closed form per segment; scaling the scene by k (centres, radii,
cameras, near/far) and densities by 1/k renders bit-identical images (up to float rounding), which
makes PSNR at different k comparable by construction (the claim check of the paper's Sec. 6).

Shape legend: R rays, M spheres, E = 2M + 2 segment boundaries, H W image, V views.
Camera convention: camera-to-world [4, 4] (OpenGL/Blender: x right, y up, looks down -z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class SphereScene:
    """Spheres at unit scale (k = 1); `scaled(k)` returns the same scene at scale k."""

    centers: tuple[tuple[float, float, float], ...] = (
        (0.0, 0.0, -0.1), (0.65, 0.1, 0.3), (-0.55, -0.45, 0.25), (0.1, 0.6, -0.45))
    radii: tuple[float, ...] = (0.45, 0.2, 0.25, 0.22)
    densities: tuple[float, ...] = (40.0, 40.0, 15.0, 4.0)  # per unit length at k = 1
    colors: tuple[tuple[float, float, float], ...] = (
        (0.85, 0.25, 0.2), (0.2, 0.75, 0.3), (0.2, 0.35, 0.9), (0.95, 0.8, 0.2))
    bound: float = 1.0  # the scene lies in [-bound, bound]^3
    scale: float = 1.0  # k

    def scaled(self, k: float) -> SphereScene:
        """Scene at scale k: lengths x k, densities / k (alpha invariance, Sec. 3)."""
        if not k > 0:
            raise ValueError(f"scene scale k must be > 0, got {k}")
        return SphereScene(
            centers=tuple(tuple(c * k for c in cen) for cen in self.centers),
            radii=tuple(r * k for r in self.radii),
            densities=tuple(s / k for s in self.densities), colors=self.colors,
            bound=self.bound * k, scale=self.scale * k)

    def tensors(self, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """centers [M, 3], radii [M], densities [M], colors [M, 3]."""
        kw = {"device": device, "dtype": dtype}
        return (torch.tensor(self.centers, **kw), torch.tensor(self.radii, **kw),
                torch.tensor(self.densities, **kw), torch.tensor(self.colors, **kw))


def _sphere_hits(origins: Tensor, dirs: Tensor, centers: Tensor, radii: Tensor
                 ) -> tuple[Tensor, Tensor]:
    """Entry/exit distances of unit-direction rays with spheres (nan where missed): [R, M] x 2."""
    oc = origins[:, None, :] - centers[None]  # [R, M, 3]
    b = (oc * dirs[:, None, :]).sum(-1)  # [R, M]
    c = (oc * oc).sum(-1) - radii[None] ** 2  # [R, M]
    disc = b * b - c
    root = torch.sqrt(disc.clamp_min(0.0))
    missed = disc <= 0
    t0 = torch.where(missed, torch.full_like(b, float("nan")), -b - root)
    t1 = torch.where(missed, torch.full_like(b, float("nan")), -b + root)
    return t0, t1


def _field_at(points: Tensor, scene: SphereScene) -> tuple[Tensor, Tensor]:
    """Density [...] and colour [..., 3] at points [..., 3] (overlaps: densities add,
    colour is the density-weighted mean)."""
    centers, radii, dens, cols = scene.tensors(points.device, points.dtype)
    inside = ((points[..., None, :] - centers) ** 2).sum(-1) < radii ** 2  # [..., M]
    sig = inside.to(points.dtype) * dens  # [..., M]
    total = sig.sum(-1)
    color = (sig[..., None] * cols).sum(-2) / total.clamp_min(1e-12)[..., None]
    return total, color


def render_rays_exact(scene: SphereScene, origins: Tensor, dirs: Tensor, near: Tensor,
                      far: Tensor, background: float = 1.0) -> dict[str, Tensor]:
    """Closed-form volume rendering of the sphere scene.

    Along each ray the density is constant between consecutive boundary events, so for a segment
    [a, b] with density s, colour c and incoming transmittance T_a:
        colour += T_a (1 - e^{-s l}) c,   l = b - a
        depth  += T_a [a (1 - e^{-s l}) + (1 - e^{-s l}(1 + s l)) / s]   (int t s e^{-s(t-a)} dt)
    Args:
        origins, dirs: [R, 3] (dirs unit length); near, far: [R].
    Returns:
        rgb [R, 3], depth [R] (expected depth / opacity), acc [R].
    """
    centers, radii, _, _ = scene.tensors(origins.device, origins.dtype)
    t0, t1 = _sphere_hits(origins, dirs, centers, radii)
    events = torch.cat([t0, t1, near[:, None], far[:, None]], dim=-1)  # [R, E]
    events = torch.where(torch.isnan(events), far[:, None].expand_as(events), events)
    events = torch.minimum(torch.maximum(events, near[:, None]), far[:, None])
    events, _ = torch.sort(events, dim=-1)
    a, b = events[:, :-1], events[:, 1:]  # [R, E-1]
    mid = origins[:, None, :] + 0.5 * (a + b)[..., None] * dirs[:, None, :]  # [R, E-1, 3]
    sig, col = _field_at(mid, scene)  # [R, E-1], [R, E-1, 3]
    length = b - a
    tau = sig * length
    alpha = -torch.expm1(-tau)
    trans = torch.exp(-torch.cumsum(tau, -1) + tau)  # exclusive transmittance [R, E-1]
    w = trans * alpha
    rgb = (w[..., None] * col).sum(-2) + (1.0 - w.sum(-1))[:, None] * background
    safe = sig.clamp_min(1e-12)
    seg_depth = a * alpha + torch.where(sig > 0, (1 - torch.exp(-tau) * (1 + tau)) / safe,
                                        torch.zeros_like(sig))
    acc = w.sum(-1)
    depth = (trans * seg_depth).sum(-1) / acc.clamp_min(1e-10)
    return {"rgb": rgb, "depth": depth, "acc": acc}


def _reference_render_rays(scene: SphereScene, origins: Tensor, dirs: Tensor, near: Tensor,
                           far: Tensor, num_steps: int = 20000, background: float = 1.0
                           ) -> dict[str, Tensor]:
    """Brute-force fine-step midpoint quadrature of the same integral (test oracle)."""
    steps = torch.linspace(0, 1, num_steps + 1, dtype=origins.dtype, device=origins.device)
    edges = near[:, None] + (far - near)[:, None] * steps  # [R, n+1]
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    pts = origins[:, None] + mids[..., None] * dirs[:, None]  # [R, n, 3]
    sig, col = _field_at(pts, scene)
    tau = sig * (edges[:, 1:] - edges[:, :-1])
    trans = torch.exp(-torch.cumsum(tau, -1) + tau)
    w = trans * -torch.expm1(-tau)
    rgb = (w[..., None] * col).sum(-2) + (1 - w.sum(-1))[:, None] * background
    depth = (w * mids).sum(-1) / w.sum(-1).clamp_min(1e-10)
    return {"rgb": rgb, "depth": depth, "acc": w.sum(-1)}


# ----------------------------------------------------------------------------- cameras


def look_at(position: Tensor, target: Tensor | None = None) -> Tensor:
    """Camera-to-world [4, 4] at `position` [3] looking at `target` (origin), world z up."""
    target = torch.zeros(3, dtype=position.dtype) if target is None else target
    forward = target - position
    forward = forward / forward.norm()
    up = torch.tensor([0.0, 0.0, 1.0], dtype=position.dtype)
    if torch.abs((forward * up).sum()) > 0.999:
        up = torch.tensor([0.0, 1.0, 0.0], dtype=position.dtype)
    right = torch.linalg.cross(forward, up)
    right = right / right.norm()
    cam_up = torch.linalg.cross(right, forward)
    c2w = torch.eye(4, dtype=position.dtype)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, cam_up, -forward, position
    return c2w


def camera_rig(num_views: int, radius: float, seed: int) -> Tensor:
    """Cameras on a sphere of `radius` (elevation 10..70 degrees), looking at the origin.

    Returns: c2w [V, 4, 4].
    """
    gen = torch.Generator().manual_seed(seed)
    azim = (torch.arange(num_views, dtype=torch.float64) / num_views * 2 * math.pi
            + torch.rand(num_views, generator=gen, dtype=torch.float64) * 0.5)
    elev = torch.deg2rad(10 + 60 * torch.rand(num_views, generator=gen, dtype=torch.float64))
    pos = torch.stack([torch.cos(elev) * torch.cos(azim), torch.cos(elev) * torch.sin(azim),
                       torch.sin(elev)], -1) * radius  # [V, 3]
    return torch.stack([look_at(p) for p in pos]).float()


def pinhole_rays(c2w: Tensor, height: int, width: int, focal: float, cx: float | None = None,
                 cy: float | None = None) -> tuple[Tensor, Tensor]:
    """Rays through pixel centres of one view (OpenGL convention).

    Args:
        c2w: [4, 4] (or [3, 4]) camera-to-world.
    Returns:
        origins [H*W, 3], unit directions [H*W, 3] (row-major pixels).
    """
    cx = width / 2 if cx is None else cx
    cy = height / 2 if cy is None else cy
    j, i = torch.meshgrid(torch.arange(height, dtype=c2w.dtype) + 0.5,
                          torch.arange(width, dtype=c2w.dtype) + 0.5, indexing="ij")
    cam = torch.stack([(i - cx) / focal, -(j - cy) / focal, -torch.ones_like(i)], -1)  # [H, W, 3]
    dirs = cam.reshape(-1, 3) @ c2w[:3, :3].T  # [H*W, 3]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(dirs).contiguous(), dirs
