"""Synthetic captures written in the exact official layout (see data.py): a head 400 mm from a
fixed camera, translating and turning over the frames; both corneas (ellipsoid caps) are ray
traced exactly (2 x 2 supersampling): the procedural scene along the reflected ray + the iris
texture at the limbus-plane lookup (the image model of Sec. 3.2). Frames are 16-bit RGB TIFFs,
masks 0/255 PNGs, transforms_{train,test}.json carry one entry per eye with absolute paths,
`ellipse_params` (rx = half the mask's width, as gen_masks_offline.py), fl_x from a 13.2 mm
sensor, `order` and the placeholder transform_matrix. gt.json (ours) holds the true poses.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from .cornea import ELLIPSOID, LIMBUS_RADIUS_OFFICIAL, so3_exp, trace_cornea
from .data import SENSOR_WIDTH_MM
from .scene import iris_texture, make_scene, trace_scene

# the placeholder camera-to-world matrix gen_masks_offline.py writes for every frame
OFFICIAL_TRANSFORM = [[-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0],
                      [0.0, 0.0, 0.0, 1.0]]
SKIN = (0.76, 0.6, 0.52)


def eye_rotation(gaze_out: torch.Tensor) -> torch.Tensor:
    """Cornea-to-camera rotation whose cornea z axis points into the eye (-gaze) and whose x
    axis stays closest to the camera's x. [3] -> [3, 3] (columns = cornea axes)."""
    z = -gaze_out / gaze_out.norm()
    x = torch.tensor([1.0, 0.0, 0.0], dtype=z.dtype) - z[0] * z
    x = x / x.norm()
    return torch.stack([x, torch.linalg.cross(z, x), z], dim=1)


def head_poses(n_frames: int, eye_z: float) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per frame, per eye (image-left first): true apex (mm) and rotation. The head moves on a
    loop and turns (yaw 0.25 rad, pitch 0.15 rad); each eye looks at the camera turned with it."""
    out = []
    for fi in range(n_frames):
        phase = 2 * math.pi * fi / n_frames
        head = torch.tensor([8 * math.cos(phase), 5 * math.sin(2 * phase),
                             eye_z + 20 * math.sin(phase)], dtype=torch.float64)
        yaw, pitch = 0.25 * math.sin(phase), 0.15 * math.cos(phase)
        turn = (so3_exp(torch.tensor([pitch, 0.0, 0.0], dtype=torch.float64))
                @ so3_exp(torch.tensor([0.0, yaw, 0.0], dtype=torch.float64)))
        eyes = []
        for side in (-1.0, 1.0):  # half the inter-pupil distance, 31 mm
            apex = head + torch.tensor([side * 31.0 * math.cos(yaw), 0.0,
                                        -side * 31.0 * math.sin(yaw)], dtype=torch.float64)
            eyes.append((apex, eye_rotation(turn @ (-apex / apex.norm()))))
        out.append(eyes)
    return out


def _render_eye(scene, apex, rot, fx, width, height, iris_angular, ss=2):
    """Supersampled colour and coverage of the pixels around one cornea. Returns (v0, u0,
    rgb [h, w, 3], coverage [h, w]) for the box of pixels rows v0.., cols u0.."""
    r_px = LIMBUS_RADIUS_OFFICIAL * fx / float(apex[2]) * 1.3 + 2
    uc, vc = fx * apex[0] / apex[2] + width / 2, fx * apex[1] / apex[2] + height / 2
    u0, u1 = max(0, int(uc - r_px)), min(width, int(uc + r_px) + 1)
    v0, v1 = max(0, int(vc - r_px)), min(height, int(vc + r_px) + 1)
    h, w = v1 - v0, u1 - u0
    sub = (torch.arange(ss, dtype=torch.float64) + 0.5) / ss
    us = (torch.arange(u0, u1, dtype=torch.float64)[:, None] + sub).reshape(-1)  # [w * ss]
    vs = (torch.arange(v0, v1, dtype=torch.float64)[:, None] + sub).reshape(-1)
    vv, uu = torch.meshgrid(vs, us, indexing="ij")
    dirs = torch.stack([(uu - width / 2) / fx, (vv - height / 2) / fx, torch.ones_like(uu)], -1)
    dirs = dirs.reshape(-1, 3)
    n = dirs.shape[0]
    traced = trace_cornea(dirs, apex.expand(n, 3), rot.expand(n, 3, 3), ELLIPSOID)
    hit = traced["hit"]
    colour = torch.tensor(SKIN, dtype=torch.float64).expand(n, 3).clone()
    colour[hit] = (trace_scene(scene, traced["points"][hit], traced["reflected"][hit])
                   + iris_texture(traced["eye_coords"][hit], angular=iris_angular)).clamp(0, 1)
    colour = colour.reshape(h, ss, w, ss, 3).mean(dim=(1, 3))  # [h, w, 3]
    coverage = hit.double().reshape(h, ss, w, ss).mean(dim=(1, 3))
    return v0, u0, colour, coverage


def ellipse_params(mask: np.ndarray) -> list[float]:
    """[cx, cy, rx, ry, theta] of a mask as the official pipeline stores it: centre of the
    region (pixel-index coordinates), rx = (max x - min x) / 2, ry and theta from the moments."""
    vs, us = np.nonzero(mask)
    cov = np.cov(np.stack([us, vs]).astype(np.float64))
    evals, evecs = np.linalg.eigh(cov)
    theta = math.atan2(evecs[1, 1], evecs[0, 1])
    return [float(us.mean()), float(vs.mean()), float(us.max() - us.min()) / 2.0,
            2.0 * math.sqrt(max(evals[0], 0.0)), theta]


def make_synthetic_capture(
    root: str | Path,
    n_frames: int = 12,
    image_size: int = 96,
    seed: int = 0,
    noise: float = 0.01,
    iris_angular: float = 0.15,
    eye_z: float = 400.0,
    limbus_px: float | None = None,
    width: int | None = None,
) -> Path:
    """Write an official-layout capture of height `image_size` (width 2 x height unless
    given), limbus radius `limbus_px` pixels (default height / 8), into `root`."""
    import tifffile
    from PIL import Image

    root = Path(root).resolve()
    (root / "train_masks").mkdir(parents=True, exist_ok=True)
    height, width = image_size, width or 2 * image_size
    fx = (limbus_px or image_size / 8) * eye_z / LIMBUS_RADIUS_OFFICIAL
    focal_mm = fx * SENSOR_WIDTH_MM / width  # what the EXIF would hold
    gen = torch.Generator().manual_seed(seed)
    scene = make_scene(gen, eye_z=eye_z)
    frames, gt_apex, gt_rot = [], [], []
    for fi, eyes in enumerate(head_poses(n_frames, eye_z)):
        name = f"frame_{fi:04d}"
        image = torch.tensor(SKIN, dtype=torch.float64).expand(height, width, 3).clone()
        masks = []
        for apex, rot in eyes:
            v0, u0, colour, cover = _render_eye(scene, apex, rot, fx, width, height, iris_angular)
            h, w = cover.shape
            region = image[v0:v0 + h, u0:u0 + w]
            cover3 = cover[..., None]
            image[v0:v0 + h, u0:u0 + w] = cover3 * colour + (1 - cover3) * region
            mask = np.zeros((height, width), dtype=bool)
            mask[v0:v0 + h, u0:u0 + w] = (cover >= 0.5).numpy()
            masks.append(mask)
        image = image + noise * torch.randn(image.shape, generator=gen, dtype=torch.float64)
        tif = root / f"{name}.tif"
        tifffile.imwrite(tif, (image.clamp(0, 1).numpy() * 65535).round().astype(np.uint16))
        for i, ((apex, rot), mask) in enumerate(zip(eyes, masks)):
            mask_path = root / "train_masks" / f"{name}_{i}.png"
            Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)
            frames.append({
                "mask_path": str(mask_path),
                "ellipse_params": ellipse_params(mask),
                "file_path": str(tif),
                "transform_matrix": OFFICIAL_TRANSFORM,
                "fl_x": focal_mm * (width / SENSOR_WIDTH_MM),
                # the image-left eye is the person's right eye (official ordering by box x)
                "order": "right_eye" if i == 0 else "left_eye",
            })
            gt_apex.append(apex.tolist())
            gt_rot.append(rot.tolist())
    meta = {"image_width": width, "image_height": height, "frames": frames}
    for split in ("train", "test"):
        (root / f"transforms_{split}.json").write_text(json.dumps(meta, indent=1))
    (root / "gt.json").write_text(json.dumps({
        "apex": gt_apex, "rotation": gt_rot, "scene": scene.to_dict(),
        "iris_angular": iris_angular, "eye_z": eye_z}))
    return root
