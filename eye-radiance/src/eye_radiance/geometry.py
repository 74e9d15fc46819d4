"""Cornea geometry: spherical-cap cornea, ray intersection, mirror reflection, iris coordinates,
pose from a limbus ellipse, and the SE(3) pose refinement update.

Units: millimetres. Camera frame: OpenCV (x right, y down, z forward), camera at the origin.
Shapes: N rays. A cornea pose is (c, g): c [.., 3] the limbus centre, g [.., 3] the unit optical
axis pointing out of the eye. The cornea is the cap of a sphere of radius R_C = 7.8 mm whose rim is
the limbus circle of radius R_L = 5.5 mm (Sec. 3.1 of the paper, the anatomical averages of
Nishino & Nayar's eye model); the sphere centre lies D_S = sqrt(R_C^2 - R_L^2) behind the limbus.
"""

from __future__ import annotations

import math

import torch

R_C = 7.8  # cornea radius of curvature, mm
R_L = 5.5  # limbus radius, mm
D_S = math.sqrt(R_C**2 - R_L**2)  # sphere centre to limbus plane, mm (~5.53)


def sphere_center(
    c: torch.Tensor, g: torch.Tensor, r_c: float = R_C, r_l: float = R_L
) -> torch.Tensor:
    """Centre of the cornea sphere: c - g * sqrt(r_c^2 - r_l^2). c, g: [..., 3]."""
    return c - g * math.sqrt(r_c**2 - r_l**2)


def intersect_cornea(
    origins: torch.Tensor,
    dirs: torch.Tensor,
    c: torch.Tensor,
    g: torch.Tensor,
    r_c: float = R_C,
    r_l: float = R_L,
) -> dict[str, torch.Tensor]:
    """First intersection of rays with the corneal cap.

    Args:
        origins, dirs: [N, 3] ray origins and unit directions.
        c, g: [N, 3] limbus centre and unit optical axis of the cornea each ray is tested against.
    Returns:
        dict with "t" [N] ray distance, "points" [N, 3], "normals" [N, 3] outward unit normals,
        "hit" [N] bool: the ray meets the sphere in front of its origin on the cap side of the
        limbus plane. Entries of missed rays are finite but meaningless.
    """
    assert origins.shape == dirs.shape == c.shape == g.shape, (origins.shape, c.shape)
    s = sphere_center(c, g, r_c, r_l)
    oc = origins - s  # [N, 3]
    b = (oc * dirs).sum(-1)  # [N]
    disc = b**2 - ((oc * oc).sum(-1) - r_c**2)  # [N]
    sphere_hit = disc > 0
    t = -b - torch.sqrt(disc.clamp(min=0.0))  # nearer root
    points = origins + t[:, None] * dirs
    normals = (points - s) / r_c
    on_cap = ((points - s) * g).sum(-1) >= math.sqrt(r_c**2 - r_l**2)  # beyond the limbus plane
    hit = sphere_hit & (t > 0) & on_cap
    return {"t": t, "points": points, "normals": normals, "hit": hit}


def reflect(dirs: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Mirror reflection d' = d - 2 (n . d) n (Sec. 3.1). dirs, normals: [N, 3] unit vectors."""
    return dirs - 2.0 * (dirs * normals).sum(-1, keepdim=True) * normals


def tangent_frame(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two unit vectors e1, e2 [..., 3] spanning the limbus plane of axis g, smooth in g.

    e1 is the camera's x axis projected onto the plane (eyes face the camera, so g is never
    parallel to x in practice), e2 = g x e1.
    """
    x = torch.zeros_like(g)
    x[..., 0] = 1.0
    e1 = x - (x * g).sum(-1, keepdim=True) * g
    e1 = e1 / e1.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    return e1, torch.cross(g, e1, dim=-1)


def iris_coords(
    points: torch.Tensor, c: torch.Tensor, g: torch.Tensor, r_l: float = R_L
) -> torch.Tensor:
    """Where a cornea point sees the iris: its orthogonal projection onto the limbus plane, in
    limbus radii -> uv [N, 2] in the unit disc (refraction by the cornea is ignored)."""
    e1, e2 = tangent_frame(g)
    rel = points - c
    return torch.stack([(rel * e1).sum(-1), (rel * e2).sum(-1)], dim=-1) / r_l


def rodrigues(omega: torch.Tensor) -> torch.Tensor:
    """Axis-angle [..., 3] -> rotation matrix [..., 3, 3] (differentiable, safe at 0)."""
    theta2 = (omega * omega).sum(-1, keepdim=True)[..., None]  # [..., 1, 1]
    theta = torch.sqrt(theta2 + 1e-24)
    k = torch.zeros(*omega.shape[:-1], 3, 3, dtype=omega.dtype, device=omega.device)
    k[..., 0, 1], k[..., 0, 2] = -omega[..., 2], omega[..., 1]
    k[..., 1, 0], k[..., 1, 2] = omega[..., 2], -omega[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -omega[..., 1], omega[..., 0]
    small = theta < 1e-4  # Taylor expansions of sin(t)/t and (1 - cos t)/t^2
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-24))
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def refine_pose(
    c: torch.Tensor, g: torch.Tensor, delta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the learned SE(3) correction (Sec. 3.3): delta [..., 6] = (omega, t) rotates the
    axis about the limbus centre and translates the centre: g' = R(omega) g, c' = c + t."""
    rot = rodrigues(delta[..., :3])
    g_new = (rot @ g[..., None])[..., 0]
    return c + delta[..., 3:], g_new / g_new.norm(dim=-1, keepdim=True)


def _ellipse_moments(pts: torch.Tensor) -> tuple[torch.Tensor, float, float, torch.Tensor]:
    """Centre, semi-axes a >= b and unit minor-axis direction of 2D points filling an ellipse
    (a filled ellipse has covariance eigenvalues a^2/4 and b^2/4)."""
    mean = pts.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((pts - mean).T))  # ascending
    return (
        mean,
        2 * math.sqrt(float(evals[1])),
        2 * math.sqrt(max(float(evals[0]), 0.0)),
        evecs[:, 0],
    )


def fit_ellipse(mask: torch.Tensor) -> dict[str, float] | None:
    """Ellipse of a filled binary region in pixel coordinates (pixel centres at +0.5), by
    `_ellipse_moments`. mask: [H, W] bool. Returns centre (u, v), a, b and the major-axis angle,
    or None if < 6 pixels."""
    vs, us = torch.nonzero(mask, as_tuple=True)
    if us.numel() < 6:
        return None
    pts = torch.stack([us.double() + 0.5, vs.double() + 0.5], dim=1)  # [M, 2]
    mean, a, b, minor = _ellipse_moments(pts)
    return {
        "u": float(mean[0]),
        "v": float(mean[1]),
        "a": a,
        "b": b,
        "angle": math.atan2(float(minor[0]), -float(minor[1])),
    }  # major = minor rotated 90 deg


def pose_from_mask(
    mask: torch.Tensor, k: torch.Tensor, r_l: float = R_L
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Limbus pose from its image region (Nishino & Nayar 2004, Sec. 3.2 of the paper).

    The pixels are mapped to viewing directions and projected onto the plane perpendicular to
    the region's central ray (this removes the off-axis perspective stretch); there the limbus
    is an ellipse with semi-axes a >= b: distance D = r_l / a along the central ray, tilt
    tau = arccos(b / a) of the axis away from the ray, towards the minor axis. The two-fold
    sign ambiguity of the tilt is resolved by taking the more frontal axis (closer to -z: heads
    face the camera). mask: [H, W] bool; returns c [3], g [3] (float64) or None (< 6 pixels).
    """
    vs, us = torch.nonzero(mask, as_tuple=True)
    if us.numel() < 6:
        return None
    pix = torch.stack(
        [us.double() + 0.5, vs.double() + 0.5, torch.ones_like(us, dtype=torch.float64)], 1
    )
    dirs = pix @ torch.linalg.inv(k.double()).T
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)  # [M, 3]
    ray = dirs.mean(0)
    ray = ray / ray.norm()
    e1, e2 = tangent_frame(-ray[None])
    e1, e2 = e1[0], e2[0]
    tan = torch.stack([dirs @ e1, dirs @ e2], 1) / (dirs @ ray)[:, None]  # gnomonic coordinates
    centre, a, b, minor = _ellipse_moments(tan)
    ray = torch.stack([torch.ones((), dtype=torch.float64), centre[0], centre[1]]) @ torch.stack(
        [ray, e1, e2]
    )
    ray = ray / ray.norm()
    c = (r_l / a) * ray
    tau = math.acos(min(1.0, b / a))
    minor_3d = minor[0] * e1 + minor[1] * e2
    candidates = [-math.cos(tau) * ray + sign * math.sin(tau) * minor_3d for sign in (1.0, -1.0)]
    g = max(candidates, key=lambda v: float(-v[2]))
    return c, g / g.norm()


def axis_angle_error_deg(g_a: torch.Tensor, g_b: torch.Tensor) -> torch.Tensor:
    """Angle between unit axes in degrees, [...]."""
    cos = (g_a * g_b).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))
