"""Differentiable 3D Gaussian splatting in pure PyTorch (CPU default), gsplat on CUDA (Sec. 3.4).

Conventions follow gsplat 1.5.3 so that its pure-PyTorch reference (`gsplat.cuda._torch_impl`) is
an independent oracle: OpenCV cameras (x right, y down, z forward), `viewmats` world->camera
[B, 4, 4], pinhole intrinsics `Ks` [B, 3, 3] in pixels, pixel centres at (x + 0.5, y + 0.5),
quaternions (w, x, y, z), 2D covariance blur eps2d = 0.3, Gaussian support 3.33 sigma, alpha
clamped to 0.999, contributions below 1/255 skipped and compositing stopped once transmittance
would fall to 1e-4 (the CUDA kernel's rules).

Shapes: B cameras (one scene per camera), N Gaussians, C colour channels, H x W image.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.999
T_MIN = 1e-4
MIN_SCALE = 1e-6  # degenerate (<= 0) scales are clamped to this and counted
Backend = Literal["torch", "gsplat"]


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """[..., 4] (w, x, y, z), any norm -> [..., 3, 3] rotation matrices."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, -1).reshape(quats.shape[:-1] + (3, 3))


def covariance_3d(quats: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Sigma = R S S^T R^T: [..., 3, 3] from quats [..., 4] and scales [..., 3] (3DGS Eq. 6)."""
    m = quat_to_rotmat(quats) * scales[..., None, :]  # [..., 3, 3] = R S
    return m @ m.transpose(-1, -2)


def project_gaussians(means: torch.Tensor, covars: torch.Tensor, viewmats: torch.Tensor,
                      Ks: torch.Tensor, width: int, height: int, eps2d: float = 0.3,
                      near: float = 0.01, far: float = 1e10) -> dict[str, torch.Tensor]:
    """EWA splatting projection (Zwicker et al. 2001; 3DGS Eq. 5).

    Args:
        means: [B, N, 3] world. covars: [B, N, 3, 3]. viewmats: [B, 4, 4]. Ks: [B, 3, 3].
    Returns:
        dict: means2d [B, N, 2] pixels, conics [B, N, 3] (upper triangle of the inverse 2D
        covariance: a, b, c), depths [B, N] camera z, radii [B, N, 2] int (0 = culled).
    """
    assert means.ndim == 3 and means.shape[-1] == 3, means.shape
    rot, trans = viewmats[:, None, :3, :3], viewmats[:, None, :3, 3]  # [B, 1, 3, 3], [B, 1, 3]
    means_c = (rot @ means[..., None]).squeeze(-1) + trans  # [B, N, 3]
    covars_c = rot @ covars @ rot.transpose(-1, -2)  # [B, N, 3, 3]
    tx, ty, tz = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # [B, 1]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    # clamp the Jacobian's evaluation point to 1.3 x the view frustum (as 3DGS/gsplat do)
    lim_x = (0.3 * 0.5 * width / fx)
    lim_y = (0.3 * 0.5 * height / fy)
    tx_c = tz * torch.clamp(tx / tz, min=-(cx / fx + lim_x), max=(width - cx) / fx + lim_x)
    ty_c = tz * torch.clamp(ty / tz, min=-(cy / fy + lim_y), max=(height - cy) / fy + lim_y)
    zeros = torch.zeros_like(tz)
    jac = torch.stack([fx / tz, zeros, -fx * tx_c / tz**2,
                       zeros, fy / tz, -fy * ty_c / tz**2], -1).reshape(tz.shape + (2, 3))
    cov2d = jac @ covars_c @ jac.transpose(-1, -2)  # [B, N, 2, 2]
    cov2d = cov2d + eps2d * torch.eye(2, dtype=means.dtype, device=means.device)
    det = (cov2d[..., 0, 0] * cov2d[..., 1, 1] - cov2d[..., 0, 1] * cov2d[..., 1, 0])
    det_c = det.clamp(min=1e-10)
    conics = torch.stack([cov2d[..., 1, 1] / det_c,
                          -(cov2d[..., 0, 1] + cov2d[..., 1, 0]) / 2 / det_c,
                          cov2d[..., 0, 0] / det_c], -1)  # [B, N, 3]
    means2d = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy], -1)  # [B, N, 2]
    radius = torch.stack([torch.ceil(3.33 * cov2d[..., 0, 0].sqrt()),
                          torch.ceil(3.33 * cov2d[..., 1, 1].sqrt())], -1).detach()
    valid = (det > 0) & (tz > near) & (tz < far)
    inside = ((means2d[..., 0] + radius[..., 0] > 0) & (means2d[..., 0] - radius[..., 0] < width)
              & (means2d[..., 1] + radius[..., 1] > 0) & (means2d[..., 1] - radius[..., 1] < height))
    radii = torch.where((valid & inside).detach()[..., None], radius, 0).int()
    return {"means2d": means2d, "conics": conics, "depths": tz, "radii": radii}


def _pixel_pairs(means2d: torch.Tensor, radii: torch.Tensor, width: int, height: int):
    """Enumerate (gaussian, pixel) pairs inside each Gaussian's 3.33-sigma box.

    Args: means2d [M, 2], radii [M, 2] (> 0). Returns gaussian ids [Q] and pixel x, y [Q] long.
    """
    lo = torch.floor(means2d.detach() - radii).long()
    hi = torch.ceil(means2d.detach() + radii).long()
    x0, y0 = lo[:, 0].clamp(0, width), lo[:, 1].clamp(0, height)
    x1, y1 = hi[:, 0].clamp(0, width), hi[:, 1].clamp(0, height)
    wx, wy = (x1 - x0).clamp(min=0), (y1 - y0).clamp(min=0)
    counts = wx * wy  # [M]
    gid = torch.repeat_interleave(torch.arange(len(counts), device=means2d.device), counts)
    start = torch.cumsum(counts, 0) - counts
    local = torch.arange(len(gid), device=means2d.device) - start[gid]
    return gid, x0[gid] + local % wx[gid], y0[gid] + local // wx[gid]


def rasterize(proj: dict[str, torch.Tensor], colors: torch.Tensor, opacities: torch.Tensor,
              width: int, height: int, background: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth-sorted alpha compositing over sparse (Gaussian, pixel) pairs, batched.

    Each Gaussian touches only the pixels of its 3.33-sigma box (beyond it alpha < 1/255, so this
    culling is exact, as gsplat's tiles). Pairs are sorted by (pixel, depth) and the per-pixel
    front-to-back products prod_j (1 - alpha_j) are segment-wise cumulative sums of
    log(1 - alpha) in float64 (float32 would lose the per-pixel precision in a long global sum).

    Args:
        proj: output of `project_gaussians`. colors: [B, N, C]. opacities: [B, N] in [0, 1].
        background: [B, C] or None (black).
    Returns:
        image [B, H, W, C] and alpha [B, H, W, 1].
    """
    batch, num, channels = colors.shape
    keep = (proj["radii"] > 0).all(-1)  # [B, N]
    bid, nid = torch.nonzero(keep, as_tuple=True)
    gid, px, py = _pixel_pairs(proj["means2d"][bid, nid], proj["radii"][bid, nid].to(colors.dtype),
                               width, height)
    b, n = bid[gid], nid[gid]  # [Q]
    delta = torch.stack([px, py], -1).to(colors.dtype) + 0.5 - proj["means2d"][b, n]  # [Q, 2]
    a, bb, c = proj["conics"][b, n].unbind(-1)
    sigma = 0.5 * (a * delta[:, 0] ** 2 + c * delta[:, 1] ** 2) + bb * delta[:, 0] * delta[:, 1]
    alpha = torch.clamp_max(opacities[b, n] * torch.exp(-sigma), ALPHA_MAX)
    ok = ((sigma >= 0) & (alpha >= ALPHA_MIN)).detach()
    b, n, px, py, alpha = b[ok], n[ok], px[ok], py[ok], alpha[ok]
    # sort by pixel, then depth (rank of each Gaussian's depth within its image)
    rank = torch.argsort(torch.argsort(proj["depths"].detach(), dim=1, stable=True), dim=1)
    pixel = (b * height + py) * width + px  # [Q] global pixel id
    order = torch.argsort(pixel * num + rank[b, n], stable=True)
    pixel, alpha, b, n = pixel[order], alpha[order], b[order], n[order]
    log_t = torch.log1p(-alpha).double()
    csum = torch.cumsum(log_t, 0)
    first = torch.ones_like(pixel, dtype=torch.bool)
    first[1:] = pixel[1:] != pixel[:-1]
    seg_start = torch.cummax(torch.where(first, torch.arange(len(pixel), device=pixel.device), 0),
                             0).values
    before = (csum - log_t)[seg_start]  # cumulative sum just before the pixel's first pair
    trans_excl = torch.exp(csum - log_t - before).to(alpha.dtype)
    trans_incl = torch.exp(csum - before).to(alpha.dtype)
    weights = alpha * trans_excl * (trans_incl > T_MIN).detach()  # [Q]
    total = batch * height * width
    image = torch.zeros(total, channels, dtype=colors.dtype, device=colors.device).index_add(
        0, pixel, weights[:, None] * colors[b, n])
    acc = torch.zeros(total, dtype=colors.dtype, device=colors.device).index_add(0, pixel, weights)
    image = image.reshape(batch, height, width, channels)
    acc = acc.reshape(batch, height, width, 1)
    if background is not None:
        image = image + (1.0 - acc) * background[:, None, None, :]
    return image, acc


def _reference_rasterize(proj: dict[str, torch.Tensor], colors: torch.Tensor,
                         opacities: torch.Tensor, width: int, height: int,
                         background: torch.Tensor | None = None):
    """Slow per-pixel loop transcribing the CUDA kernel's rules, no culling: for tests."""
    batch, _, channels = colors.shape
    rows = []
    for b in range(batch):
        ids = [int(i) for i in torch.argsort(proj["depths"][b].detach(), stable=True)
               if (proj["radii"][b, i] > 0).all()]
        for y in range(height):
            for x in range(width):
                trans = torch.ones((), dtype=colors.dtype)
                acc = torch.zeros(channels, dtype=colors.dtype)
                for i in ids:
                    dx, dy = x + 0.5 - proj["means2d"][b, i, 0], y + 0.5 - proj["means2d"][b, i, 1]
                    a, bb, c = proj["conics"][b, i]
                    sigma = 0.5 * (a * dx * dx + c * dy * dy) + bb * dx * dy
                    alpha = torch.clamp_max(opacities[b, i] * torch.exp(-sigma), ALPHA_MAX)
                    if sigma < 0 or alpha < ALPHA_MIN:
                        continue
                    next_t = trans * (1 - alpha)
                    if next_t <= T_MIN:
                        break
                    acc = acc + alpha * trans * colors[b, i]
                    trans = next_t
                if background is not None:
                    acc = acc + trans * background[b]
                rows.append(torch.cat([acc, 1 - trans[None]]))
    out = torch.stack(rows).reshape(batch, height, width, channels + 1)
    return out[..., :channels], out[..., channels:]


def resolve_backend(name: str, device: torch.device) -> Backend:
    """`auto` -> gsplat's CUDA rasteriser on a CUDA device, the pure-PyTorch one elsewhere."""
    if name == "auto":
        return "gsplat" if torch.device(device).type == "cuda" else "torch"
    return name  # type: ignore[return-value]


def render_gaussians(means: torch.Tensor, quats: torch.Tensor, scales: torch.Tensor,
                     opacities: torch.Tensor, colors: torch.Tensor, viewmats: torch.Tensor,
                     Ks: torch.Tensor, width: int, height: int,
                     background: torch.Tensor | None = None, backend: Backend = "torch"
                     ) -> dict[str, torch.Tensor]:
    """Render B scenes of N Gaussians, one camera each.

    Args:
        means [B, N, 3], quats [B, N, 4], scales [B, N, 3] (> 0), opacities [B, N], colors
        [B, N, C], viewmats [B, 4, 4], Ks [B, 3, 3], background [B, C] or None.
        backend: "torch" (pure PyTorch, any device) or "gsplat" (CUDA `gsplat.rasterization`).
    Returns:
        dict: image [B, H, W, C], alpha [B, H, W, 1], depth [B, H, W, 1] (alpha-weighted z),
        num_degenerate_scales (int): Gaussians with a zero/negative/non-finite scale, which are
        clamped to MIN_SCALE before rendering.
    """
    bad = ~(scales > 0).all(-1)  # also catches NaN
    num_bad = int(bad.sum())
    if num_bad:
        scales = torch.nan_to_num(scales, nan=MIN_SCALE).clamp(min=MIN_SCALE)
    if backend == "gsplat":
        if not means.is_cuda:
            raise RuntimeError("backend='gsplat' needs CUDA tensors; use backend='torch' on CPU")
        out = _render_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width,
                             height, background)
        return {**out, "num_degenerate_scales": num_bad}
    proj = project_gaussians(means, covariance_3d(quats, scales), viewmats, Ks, width, height)
    feats = torch.cat([colors, proj["depths"][..., None]], -1)  # depth rides along as a channel
    bg = None if background is None else torch.cat([background, background[:, :1] * 0], -1)
    out, alpha = rasterize(proj, feats, opacities, width, height, bg)
    return {"image": out[..., :-1], "alpha": alpha, "depth": out[..., -1:],
            "num_degenerate_scales": num_bad}


def _render_gsplat(means, quats, scales, opacities, colors, viewmats, Ks, width, height,
                   background):
    """gsplat 1.5.3 `rasterization`, one scene per camera, render_mode "RGB+D".

    gsplat appends the depth channel's zero background itself in "RGB+D" mode, so the
    background passed is the colour one only ([1, C]); passing [1, C + 1] trips its shape
    assertion (found by reading gsplat 1.5.3 `rendering.py`)."""
    try:
        from gsplat import rasterization
    except ImportError as err:  # pragma: no cover - gsplat is a dependency
        raise ImportError("backend='gsplat' needs `pip install gsplat==1.5.3`") from err
    images, alphas, depths = [], [], []
    for b in range(means.shape[0]):  # one scene per camera
        out, alpha, _ = rasterization(
            means[b], quats[b], scales[b], opacities[b], colors[b], viewmats[b:b + 1],
            Ks[b:b + 1], width, height, render_mode="RGB+D", packed=False,
            backgrounds=None if background is None else background[b:b + 1])
        images.append(out[0, ..., :-1])
        depths.append(out[0, ..., -1:])
        alphas.append(alpha[0])
    return {"image": torch.stack(images), "alpha": torch.stack(alphas),
            "depth": torch.stack(depths)}
