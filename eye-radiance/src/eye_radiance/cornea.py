"""Cornea geometry of the official method (HadiZayer/eyenerf, `eyenerf_datamanager.py`): the
ellipsoid corneal cap, ray intersection, normals, mirror reflection, the limbus-plane iris lookup,
the per eye-image pose (initial pose from the limbus, refinement offsets, so(3) rotation about the
apex) and the sampling-mask erosion.

Frames and units. Camera frame: OpenCV (x right, y down, z forward), camera at the origin, mm.
Cornea frame: apex at the origin, axes parallel to the camera's at zero rotation (the official
initial pose looks straight back at the camera), the cap bulging towards -z:
    x^2 + y^2 + p z^2 - 2 R z = 0,   0 <= z < t_max                      (Sec. 3.1)
with p = 1 - e^2 (e = 0.5, so p = 0.75), R = 7.8 mm the radius of curvature at the apex and
t_max = 2.18 mm the cap height; the limbus is the rim z = t_max, of radius
r_L = sqrt(2 R t_max - p t_max^2) ~ 5.5186 mm. p = 1 gives the spherical cap of the ablation.
Shapes: N rays, M eye images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

R_APEX = 7.8  # mm, radius of curvature at the apex (Nishino & Nayar's eye model)
ECCENTRICITY = 0.5
T_MAX = 2.18  # mm, cap height
LIMBUS_RADIUS_OFFICIAL = 5.518562874251497  # mm, the constant of the official depth formula
IRIS_LOOKUP_SCALE = 5.5  # mm, the official divides limbus-plane coordinates by 5.5 ...
IRIS_LOOKUP_SHRINK = math.sqrt(2.0)  # ... then by sqrt(2) before clipping to [-1, 1]


@dataclass(frozen=True)
class CapShape:
    """Corneal cap x^2 + y^2 + p z^2 - 2 R z = 0, 0 <= z < t_max (mm)."""

    p: float = 1.0 - ECCENTRICITY**2
    radius: float = R_APEX
    t_max: float = T_MAX

    @property
    def limbus_radius(self) -> float:
        return math.sqrt(2 * self.radius * self.t_max - self.p * self.t_max**2)


ELLIPSOID = CapShape()


def spherical_cap(
    limbus_radius: float = LIMBUS_RADIUS_OFFICIAL, radius: float = R_APEX
) -> CapShape:
    """Sphere of the same apex radius (p = 1) cut at the height where its rim has the ellipsoid's
    limbus radius, so that the two caps differ only in shape (the ablation's spherical cornea)."""
    return CapShape(p=1.0, radius=radius, t_max=radius - math.sqrt(radius**2 - limbus_radius**2))


def cap_shape(name: str) -> CapShape:
    if name == "ellipsoid":
        return ELLIPSOID
    if name == "sphere":
        return spherical_cap()
    raise ValueError(f"unknown cornea shape {name!r}")


def intersect_cap(
    origins: torch.Tensor, dirs: torch.Tensor, cap: CapShape = ELLIPSOID
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearer root of a ray with the cap quadric, in the cornea frame.

    a t^2 + b t + c = 0 with a = vx^2 + vy^2 + p vz^2, b = 2 (ox vx + oy vy + p oz vz - R vz),
    c = ox^2 + oy^2 + p oz^2 - 2 R oz; t = (-b - sqrt(b^2 - 4 a c)) / 2a.
    Args:
        origins, dirs: [N, 3] cornea-frame rays (dirs need not be unit).
    Returns:
        t [N] (ray parameter), points [N, 3], hit [N] bool: the discriminant is positive and the
        point lies on the cap (z < t_max), as the official test. Missed rays hold finite values.
    """
    assert origins.shape == dirs.shape and origins.shape[-1] == 3, (origins.shape, dirs.shape)
    p, r = cap.p, cap.radius
    (ox, oy, oz), (vx, vy, vz) = origins.unbind(-1), dirs.unbind(-1)
    a = vx**2 + vy**2 + p * vz**2
    b = 2 * (ox * vx + oy * vy + p * oz * vz - r * vz)
    c = ox**2 + oy**2 + p * oz**2 - 2 * r * oz
    disc = b * b - 4 * a * c
    valid = disc > 0
    # the clamp keeps sqrt's gradient finite on missed rays; their values are masked by `hit`
    t = (-b - torch.sqrt(torch.where(valid, disc, torch.ones_like(disc)))) / (2 * a)
    points = origins + t[..., None] * dirs
    return t, points, valid & (points[..., 2] < cap.t_max)


def cap_normals(points: torch.Tensor, cap: CapShape = ELLIPSOID) -> torch.Tensor:
    """Outward unit normals (gradient of the quadric, (2x, 2y, 2 p z - 2 R)), [N, 3] -> [N, 3]."""
    x, y, z = points.unbind(-1)
    grad = torch.stack([2 * x, 2 * y, 2 * cap.p * z - 2 * cap.radius], dim=-1)
    return grad / grad.norm(dim=-1, keepdim=True)


def reflect(dirs: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Mirror reflection d' = d - 2 (n . d) n (Sec. 3.1). dirs, normals: [N, 3]."""
    return dirs - 2.0 * (dirs * normals).sum(-1, keepdim=True) * normals


def limbus_plane_coords(
    origins: torch.Tensor, dirs: torch.Tensor, cap: CapShape = ELLIPSOID
) -> torch.Tensor:
    """Where the camera ray meets the limbus plane z = t_max, divided by 5.5 mm (official
    `batched_ray_plane_intersection` + `/ 5.5`); refraction is not modelled. [N, 3] -> [N, 2]."""
    t = (cap.t_max - origins[..., 2]) / dirs[..., 2]
    return (origins + t[..., None] * dirs)[..., :2] / IRIS_LOOKUP_SCALE


def iris_texture_coords(eye_coords: torch.Tensor) -> torch.Tensor:
    """Official texture lookup: divide by sqrt(2), clip to [-1, 1], map to [0, 1]. [N, 2]."""
    return (eye_coords / IRIS_LOOKUP_SHRINK).clamp(-1.0, 1.0) * 0.5 + 0.5


def so3_exp(omega: torch.Tensor) -> torch.Tensor:
    """Axis-angle [..., 3] -> rotation matrix [..., 3, 3] (Rodrigues, exact Taylor terms at 0)."""
    theta2 = (omega * omega).sum(-1)[..., None, None]  # [..., 1, 1]
    theta = torch.sqrt(theta2.clamp(min=1e-24))
    zero = torch.zeros_like(omega[..., 0])
    wx, wy, wz = omega.unbind(-1)
    k = torch.stack(
        [zero, -wz, wy, wz, zero, -wx, -wy, wx, zero], dim=-1
    ).reshape(*omega.shape[:-1], 3, 3)  # [..., 3, 3] skew matrix
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-24))
    eye = torch.eye(3, dtype=omega.dtype, device=omega.device)
    return eye + a * k + b * (k @ k)


def apex_positions(
    centre_px: torch.Tensor,
    depth_mm: torch.Tensor,
    fx: torch.Tensor,
    fy: torch.Tensor,
    width: torch.Tensor,
    height: torch.Tensor,
    depth_offset_m: torch.Tensor,
    xy_offset_mm: torch.Tensor,
) -> torch.Tensor:
    """Apex position in the camera frame (mm) of the official "depth" parametrisation.

    z = depth + 1e3 * depth_offset (the offset is a metre-scaled parameter), x, y = the ellipse
    centre pixel back-projected to depth z (so the depth offset moves the eye along that pixel's
    ray) + the x/y offsets in mm. The official principal point is (W/2, H/2).
    Args: centre_px [N, 2] (u, v) pixel, depth_mm, fx, fy, width, height, depth_offset_m [N];
    xy_offset_mm [N, 2]. Returns [N, 3].
    """
    z = depth_mm + 1e3 * depth_offset_m
    x = (centre_px[..., 0] - width / 2) * z / fx + xy_offset_mm[..., 0]
    y = (centre_px[..., 1] - height / 2) * z / fy + xy_offset_mm[..., 1]
    return torch.stack([x, y, z], dim=-1)


def trace_cornea(
    dirs_cam: torch.Tensor, apex: torch.Tensor, rotation: torch.Tensor, cap: CapShape = ELLIPSOID
) -> dict[str, torch.Tensor]:
    """Camera rays (origin 0) through one cornea each: hit, reflected ray, iris coordinates.

    The cornea frame is the camera frame translated to the apex and rotated by `rotation`
    (cornea -> camera), i.e. the rotation is about the apex (official `next_train`).
    Args:
        dirs_cam: [N, 3] camera-frame ray directions; apex [N, 3] mm; rotation [N, 3, 3].
    Returns dict: "hit" [N] bool, "points" [N, 3] camera frame mm, "normals" [N, 3],
        "reflected" [N, 3] unit directions (camera frame), "eye_coords" [N, 2] limbus-plane
        coordinates / 5.5 mm, "t" [N].
    """
    dirs_cam = F.normalize(dirs_cam, dim=-1)
    rot_t = rotation.transpose(-1, -2)  # camera -> cornea
    origins_c = torch.einsum("nij,nj->ni", rot_t, -apex)  # [N, 3] camera centre, cornea frame
    dirs_c = torch.einsum("nij,nj->ni", rot_t, dirs_cam)  # [N, 3]
    t, points_c, hit = intersect_cap(origins_c, dirs_c, cap)
    normals = torch.einsum("nij,nj->ni", rotation, cap_normals(points_c, cap))  # camera frame
    points = torch.einsum("nij,nj->ni", rotation, points_c) + apex
    return {
        "hit": hit,
        "t": t,
        "points": points,
        "normals": normals,
        "reflected": F.normalize(reflect(dirs_cam, normals), dim=-1),
        "eye_coords": limbus_plane_coords(origins_c, dirs_c, cap),
    }


def initial_depth(radius_px: torch.Tensor, fx: torch.Tensor) -> torch.Tensor:
    """Official depth from the limbus size: 5.5186 mm * fx / r_px (mm)."""
    return LIMBUS_RADIUS_OFFICIAL * fx / radius_px


def mask_limbus_official(mask: torch.Tensor) -> tuple[float, float, float] | None:
    """(cx, cy, r_px) of a mask the official way when no `ellipse_params` are given (its
    synthetic-data branch): edge pixels = mask pixels 4-adjacent to background; centre = the
    integer midpoint of their bounding box, max + (min - max) // 2; radius = half the largest
    distance between two edge pixels. None for an empty mask. mask [H, W] bool."""
    if not bool(mask.any()):
        return None
    background = F.pad(~mask, (1, 1, 1, 1), value=True)[None, None].float()
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    near_background = F.conv2d(background, cross[None, None])[0, 0] > 0
    ys, xs = torch.nonzero(mask & near_background, as_tuple=True)
    cx = int(xs.max()) + (int(xs.min()) - int(xs.max())) // 2
    cy = int(ys.max()) + (int(ys.min()) - int(ys.max())) // 2
    pts = torch.stack([ys, xs], dim=-1).double()
    return float(cx), float(cy), float(torch.cdist(pts, pts).max()) / 2


def erode(mask: torch.Tensor, size: int) -> torch.Tensor:
    """Binary erosion with a size x size square (cv2.erode with border replicate-free default:
    outside the image counts as foreground, as OpenCV's default border for erosion). [H, W]."""
    if size <= 1:
        return mask.clone()
    lo, hi = (size - 1) // 2, size // 2
    padded = F.pad(mask[None, None].float(), (lo, hi, lo, hi), value=1.0)
    return -F.max_pool2d(-padded, size, stride=1)[0, 0] > 0.5


def axis_angle_error_deg(rot_a: torch.Tensor, rot_b: torch.Tensor) -> torch.Tensor:
    """Angle between the optical axes (third columns) of two rotations [..., 3, 3], degrees."""
    cos = (rot_a[..., :, 2] * rot_b[..., :, 2]).sum(-1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cos))
