"""Procedural scene and exact eye-image renderer for the synthetic sequence.

The scene surrounds the camera: coloured, Lambert-shaded spheres between the observer and the
camera, enclosed by a "room" sphere whose colour varies with direction. Everything is analytic,
so eye images are rendered exactly by ray tracing the cornea reflection (synthetic.py), and
ground-truth views of the scene can be rendered from any viewpoint. Units mm, OpenCV camera frame.
N rays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LIGHT = (0.3, -0.8, -0.5)  # direction towards the light, for Lambert shading


@dataclass
class Scene:
    centers: torch.Tensor  # [S, 3] sphere centres
    radii: torch.Tensor  # [S]
    colors: torch.Tensor  # [S, 3] albedo in [0, 1]
    room_center: torch.Tensor  # [3]
    room_radius: float

    def to_dict(self) -> dict:
        return {
            "centers": self.centers.tolist(),
            "radii": self.radii.tolist(),
            "colors": self.colors.tolist(),
            "room_center": self.room_center.tolist(),
            "room_radius": self.room_radius,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(
            torch.tensor(d["centers"], dtype=torch.float64),
            torch.tensor(d["radii"], dtype=torch.float64),
            torch.tensor(d["colors"], dtype=torch.float64),
            torch.tensor(d["room_center"], dtype=torch.float64),
            float(d["room_radius"]),
        )


def make_scene(gen: torch.Generator, n_spheres: int = 6, eye_z: float = 400.0) -> Scene:
    """Spheres scattered around the camera (origin) facing an observer at depth `eye_z`."""
    angles = torch.rand(n_spheres, generator=gen, dtype=torch.float64) * 2 * math.pi
    ring = 120 + 180 * torch.rand(n_spheres, generator=gen, dtype=torch.float64)
    z = -150 + 250 * torch.rand(n_spheres, generator=gen, dtype=torch.float64)
    centers = torch.stack([ring * torch.cos(angles), ring * torch.sin(angles), z], dim=1)
    radii = 45 + 45 * torch.rand(n_spheres, generator=gen, dtype=torch.float64)
    colors = 0.15 + 0.85 * torch.rand(n_spheres, 3, generator=gen, dtype=torch.float64)
    return Scene(
        centers, radii, colors, torch.tensor([0.0, 0.0, eye_z / 2], dtype=torch.float64), 900.0
    )


def room_color(dirs: torch.Tensor) -> torch.Tensor:
    """Colour of the enclosing room sphere seen along unit directions from its centre [N, 3]."""
    lat = torch.asin(dirs[:, 1].clamp(-1, 1))
    lon = torch.atan2(dirs[:, 0], -dirs[:, 2])
    stripes = 0.5 + 0.5 * torch.sign(torch.sin(4 * lon) * torch.sin(3 * lat))
    base = torch.stack(
        [0.35 + 0.25 * dirs[:, 0], 0.4 - 0.2 * dirs[:, 1], 0.45 + 0.1 * dirs[:, 2]], 1
    )
    return (base * (0.6 + 0.4 * stripes[:, None])).clamp(0, 1)


def room_hit_color(scene: Scene, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Colour of the room sphere where rays [N, 3] from inside it meet it (the far root)."""
    oc_r = origins - scene.room_center
    b_r = (oc_r * dirs).sum(-1)
    t_r = -b_r + torch.sqrt((b_r**2 - (oc_r * oc_r).sum(-1) + scene.room_radius**2).clamp(min=0))
    room_dir = origins + t_r[:, None] * dirs - scene.room_center
    return room_color(room_dir / room_dir.norm(dim=-1, keepdim=True))


def trace_scene(scene: Scene, origins: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Colour seen along rays [N, 3] -> [N, 3]: nearest sphere (Lambert), else the room."""
    oc = origins[:, None, :] - scene.centers[None]  # [N, S, 3]
    b = (oc * dirs[:, None, :]).sum(-1)  # [N, S]
    disc = b**2 - ((oc * oc).sum(-1) - scene.radii[None] ** 2)
    t = -b - torch.sqrt(disc.clamp(min=0))
    t = torch.where((disc > 0) & (t > 1e-6), t, torch.full_like(t, math.inf))
    t_min, idx = t.min(dim=1)  # [N]
    hit = torch.isfinite(t_min)
    points = origins + t_min.clamp(max=1e9)[:, None] * dirs
    normals = (points - scene.centers[idx]) / scene.radii[idx, None]
    light = torch.tensor(LIGHT, dtype=dirs.dtype, device=dirs.device)
    shade = 0.35 + 0.65 * (normals @ (light / light.norm())).clamp(min=0)
    sphere_rgb = scene.colors[idx] * shade[:, None]
    return torch.where(hit[:, None], sphere_rgb, room_hit_color(scene, origins, dirs))


def _reference_trace_scene(
    scene: Scene, origin: list[float], direction: list[float]
) -> list[float]:
    """One ray, plain Python loop over spheres: the slow, obviously correct oracle."""
    best_t, best = math.inf, -1
    for s in range(scene.centers.shape[0]):
        oc = [origin[i] - float(scene.centers[s, i]) for i in range(3)]
        b = sum(oc[i] * direction[i] for i in range(3))
        disc = b * b - (sum(v * v for v in oc) - float(scene.radii[s]) ** 2)
        if disc > 0:
            t = -b - math.sqrt(disc)
            if 1e-6 < t < best_t:
                best_t, best = t, s
    o = torch.tensor([origin], dtype=torch.float64)
    d = torch.tensor([direction], dtype=torch.float64)
    if best < 0:  # no sphere on the ray: the room
        return room_hit_color(scene, o, d)[0].tolist()
    p = [origin[i] + best_t * direction[i] for i in range(3)]
    n = [(p[i] - float(scene.centers[best, i])) / float(scene.radii[best]) for i in range(3)]
    norm = math.sqrt(sum(v * v for v in LIGHT))
    shade = 0.35 + 0.65 * max(0.0, sum(n[i] * LIGHT[i] / norm for i in range(3)))
    return [float(scene.colors[best, i]) * shade for i in range(3)]


def iris_texture(
    uv: torch.Tensor, color: tuple[float, float, float] = (0.35, 0.22, 0.12), angular: float = 0.15
) -> torch.Tensor:
    """Ground-truth iris albedo at uv [N, 2] (unit disc): a dark pupil, radial rings and a weak
    angular pattern (`angular` = 0 makes it exactly radially symmetric) -> [N, 3]."""
    r = uv.norm(dim=-1)
    theta = torch.atan2(uv[:, 1], uv[:, 0])
    rings = 0.75 + 0.25 * torch.cos(18 * r) + angular * torch.cos(7 * theta) * r
    pupil = torch.sigmoid((r - 0.35) * 40)
    base = torch.tensor(color, dtype=uv.dtype, device=uv.device)
    return (base[None] * rings[:, None] * pupil[:, None]).clamp(0, 1)


def pinhole_dirs(k: torch.Tensor, height: int, width: int, supersample: int = 1) -> torch.Tensor:
    """Unit ray directions through pixel (sub-)centres, [H*s, W*s, 3]."""
    s = supersample
    v, u = torch.meshgrid(
        torch.arange(height * s, dtype=torch.float64),
        torch.arange(width * s, dtype=torch.float64),
        indexing="ij",
    )
    pix = torch.stack([(u + 0.5) / s, (v + 0.5) / s, torch.ones_like(u)], dim=-1)
    d = pix @ torch.linalg.inv(k.double()).T
    return d / d.norm(dim=-1, keepdim=True)


def look_at_dirs(
    eye: torch.Tensor, forward: torch.Tensor, size: int, fov_deg: float
) -> torch.Tensor:
    """Ray directions [size, size, 3] of a virtual pinhole at `eye` looking along `forward`."""
    f = forward / forward.norm()
    up = torch.tensor([0.0, -1.0, 0.0], dtype=f.dtype)
    right = torch.linalg.cross(up, f)
    right = right / right.norm()
    down = torch.linalg.cross(f, right)
    half = math.tan(math.radians(fov_deg) / 2)
    lin = (torch.arange(size, dtype=f.dtype) + 0.5) / size * 2 - 1
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    d = f + half * (xx[..., None] * right + yy[..., None] * down)
    return d / d.norm(dim=-1, keepdim=True)
