"""Volume-rendering baseline of the same shell representation, for the efficiency claim (Sec. 4).

GSM replaces ray-marched neural volumes (EVA3D, AG3D and other volumetric 3D GANs) with splatting.
To compare rendering cost at equal resolution on the *same* shell features, this module renders
the decoded shell attributes as a continuous volume: each ray through the body's bounding box
takes `num_samples` stratified points; a point's density and colour come from its k nearest shell
sites (Gaussian-weighted, bandwidth = `bandwidth`), density = sum_k w_k * (-log(1 - opacity_k)) /
bandwidth, and samples are alpha-composited with the NeRF quadrature
alpha_i = 1 - exp(-density_i * delta_i). It is a baseline for speed, not a reimplementation of
EVA3D/AG3D.

Shapes: N sites, R rays, M samples per ray, H x W image.
"""

from __future__ import annotations

import torch


def camera_rays(viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int):
    """World-space ray origins [R, 3] and unit directions [R, 3] through pixel centres."""
    ys, xs = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    dirs_cam = torch.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1],
                            torch.ones_like(xs)], -1).reshape(-1, 3)
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    dirs = torch.nn.functional.normalize(dirs_cam @ rot, dim=-1)  # R^T d
    origin = -(rot.T @ trans)
    return origin.expand_as(dirs), dirs


def ray_box(origins: torch.Tensor, dirs: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Slab test: entry/exit distances [R] (exit < entry = miss)."""
    inv = 1.0 / torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    t0, t1 = (lo - origins) * inv, (hi - origins) * inv
    near = torch.minimum(t0, t1).amax(-1).clamp(min=0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, far


@torch.no_grad()
def volume_render(points: torch.Tensor, colors: torch.Tensor, opacities: torch.Tensor,
                  viewmat: torch.Tensor, K: torch.Tensor, width: int, height: int,
                  num_samples: int = 32, k: int = 4, bandwidth: float = 0.03,
                  chunk: int = 4096) -> torch.Tensor:
    """Ray-march the shell sites as a density field. Returns image [H, W, 3] on white."""
    lo, hi = points.min(0).values - 2 * bandwidth, points.max(0).values + 2 * bandwidth
    origins, dirs = camera_rays(viewmat, K, width, height)
    near, far = ray_box(origins, dirs, lo, hi)
    hit = torch.nonzero(far > near).squeeze(1)
    image = torch.ones(width * height, 3)
    sigma_site = -torch.log1p(-opacities.clamp(max=0.999)) / bandwidth  # [N]
    for start in range(0, len(hit), chunk):
        ids = hit[start:start + chunk]
        t = torch.linspace(0, 1, num_samples + 1)[:-1] + 0.5 / num_samples  # [M] midpoints
        span = (far[ids] - near[ids])[:, None]
        ts = near[ids, None] + span * t  # [r, M]
        pts = origins[ids, None] + dirs[ids, None] * ts[..., None]  # [r, M, 3]
        dist, idx = torch.cdist(pts.reshape(-1, 3), points).topk(k, largest=False)  # [r*M, k]
        w = torch.exp(-0.5 * (dist / bandwidth) ** 2)
        density = (w * sigma_site[idx]).sum(-1).reshape(len(ids), num_samples)
        col = ((w[..., None] * colors[idx]).sum(1) / w.sum(1, keepdim=True).clamp(min=1e-8))
        col = col.reshape(len(ids), num_samples, 3)
        alpha = 1 - torch.exp(-density * span / num_samples)  # [r, M]
        trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha[:, :-1]], 1), 1)
        weights = alpha * trans
        image[ids] = (weights[..., None] * col).sum(1) + (1 - weights.sum(1, keepdim=True))
    return image.reshape(height, width, 3)
