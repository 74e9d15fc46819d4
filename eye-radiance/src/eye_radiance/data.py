"""Portrait sequences with cornea masks: the on-disk layout, its loader with the preprocessing
(limbus ellipse fit -> initial cornea pose), and the synthetic sequence generator that writes
the same layout.

Layout (one folder per sequence):
    cameras.json   {"K": [[fx, 0, cx], [0, fy, cy], [0, 0, 1]],
                    "frames": [{"image": "images/0000.png", "masks": ["masks/0000_0.png", ...]}]}
    images/*.png   portrait frames (RGB)
    masks/*.png    one binary mask per eye (visible cornea / iris region), same size as its frame
    poses_init.json  optional: {"poses": [[{"c": [x, y, z], "g": [x, y, z]}, ...], ...]} per
                   frame and eye, overriding the ellipse-fit initialisation (e.g. a detector's)
    gt.json        synthetic only: true poses, scene, iris parameters (read by eval only)
Units mm; camera frame OpenCV.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .geometry import pose_from_mask, rodrigues
from .scene import make_scene, pinhole_dirs, render_eye_rays


class DatasetError(ValueError):
    """A sequence folder is missing files or holds inconsistent ones; the message says which."""


@dataclass
class RaySet:
    """All cornea pixels of a sequence. R rays, F frames, E eyes per frame."""

    dirs: torch.Tensor  # [R, 3] unit camera-ray directions (origin at the camera)
    rgb: torch.Tensor  # [R, 3] observed colour in [0, 1]
    frame: torch.Tensor  # [R] frame index
    eye: torch.Tensor  # [R] eye index within the frame
    c_init: torch.Tensor  # [F, E, 3] initial limbus centres
    g_init: torch.Tensor  # [F, E, 3] initial optical axes
    k: torch.Tensor  # [3, 3] intrinsics
    frame_ids: list[int]  # index in cameras.json of each kept frame
    skipped: list[str]  # frames left out, with the reason

    def __len__(self) -> int:
        return self.dirs.shape[0]


def _read_png(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DatasetError(f"missing file {path}")
    return np.asarray(Image.open(path))


def load_sequence(root: str | Path, on_bad_frame: str = "skip") -> RaySet:
    """Read a sequence folder, fit each eye's limbus ellipse and initialise its cornea pose.

    on_bad_frame: "skip" leaves out (and counts) frames with an undetectable eye or a mask of the
    wrong size; "error" stops on the first one.
    """
    root = Path(root)
    cam_file = root / "cameras.json"
    if not cam_file.is_file():
        raise DatasetError(f"{root}: missing cameras.json (see the layout in eye_radiance.data)")
    cams = json.loads(cam_file.read_text())
    for key in ("K", "frames"):
        if key not in cams:
            raise DatasetError(f"{cam_file}: missing key {key!r}")
    k = torch.tensor(cams["K"], dtype=torch.float64)
    overrides = None
    if (root / "poses_init.json").is_file():
        overrides = json.loads((root / "poses_init.json").read_text())["poses"]
        if len(overrides) != len(cams["frames"]):
            raise DatasetError(
                f"poses_init.json has {len(overrides)} frames, cameras.json {len(cams['frames'])}"
            )
    dirs, rgbs, frames, eyes, cs, gs, skipped, kept = [], [], [], [], [], [], [], []
    for fi, frame in enumerate(cams["frames"]):
        image = _read_png(root / frame["image"]).astype(np.float32)[..., :3] / 255.0
        h, w = image.shape[:2]
        all_dirs = pinhole_dirs(k, h, w).float()  # [H, W, 3]
        frame_c, frame_g, frame_rays, problem = [], [], [], None
        for ei, mask_name in enumerate(frame["masks"]):
            mask = torch.from_numpy(_read_png(root / mask_name) > 127)
            mask = mask[..., 0] if mask.ndim == 3 else mask
            if mask.shape != (h, w):
                problem = f"{mask_name}: mask {tuple(mask.shape)} != image {(h, w)}"
                break
            pose = pose_from_mask(mask, k)
            if pose is None:
                problem = f"{mask_name}: no eye detected (mask has < 6 pixels)"
                break
            c, g = pose
            if overrides is not None:
                c = torch.tensor(overrides[fi][ei]["c"], dtype=torch.float64)
                g = torch.tensor(overrides[fi][ei]["g"], dtype=torch.float64)
            frame_c.append(c)
            frame_g.append(g / g.norm())
            frame_rays.append((all_dirs[mask], torch.from_numpy(image)[mask], ei))
        if problem is not None:
            if on_bad_frame == "error":
                raise DatasetError(f"frame {fi} ({frame['image']}): {problem}")
            skipped.append(f"frame {fi}: {problem}")
            continue
        new_index = len(cs)
        for d, rgb, ei in frame_rays:
            dirs.append(d)
            rgbs.append(rgb)
            frames.append(torch.full((d.shape[0],), new_index, dtype=torch.int64))
            eyes.append(torch.full((d.shape[0],), ei, dtype=torch.int64))
        kept.append(fi)
        cs.append(torch.stack(frame_c))
        gs.append(torch.stack(frame_g))
    if not cs:
        raise DatasetError(f"{root}: no usable frame ({len(skipped)} skipped: {skipped[:3]})")
    return RaySet(
        torch.cat(dirs),
        torch.cat(rgbs),
        torch.cat(frames),
        torch.cat(eyes),
        torch.stack(cs).float(),
        torch.stack(gs).float(),
        k.float(),
        kept,
        skipped,
    )


def _rot(axis: torch.Tensor, angle: float) -> torch.Tensor:
    return rodrigues((axis / axis.norm() * angle)[None])[0]


def make_synthetic_sequence(
    root: str | Path,
    n_frames: int = 12,
    image_size: int = 192,
    focal: float | None = None,
    eye_z: float = 400.0,
    seed: int = 0,
    noise: float = 0.01,
    pose_noise_deg: float = 2.0,
    pose_noise_mm: float = 0.5,
    iris_angular: float = 0.15,
) -> Path:
    """Render a synthetic sequence of a moving head (two eyes) into `root` in the layout above.

    The head translates and turns between frames; each image is rendered exactly (2x2
    supersampled, i.e. box-blurred) with Gaussian noise `noise`. poses_init.json holds the
    ellipse-fit poses plus a known random perturbation (`pose_noise_deg`, `pose_noise_mm`); the
    true poses, the perturbation and the scene go to gt.json.
    """
    root = Path(root)
    focal = focal or 900.0 * image_size / 192  # both eyes in frame at any image size
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    scene = make_scene(gen, eye_z=eye_z)
    k = torch.tensor(
        [[focal, 0, image_size / 2], [0, focal, image_size / 2], [0, 0, 1]], dtype=torch.float64
    )
    ss = 2
    dirs = pinhole_dirs(k, image_size, image_size, ss).reshape(-1, 3)
    frames, gt_poses, init_poses = [], [], []
    for fi in range(n_frames):
        phase = 2 * math.pi * fi / n_frames
        head = torch.tensor(
            [8 * math.cos(phase), 5 * math.sin(2 * phase), eye_z + 20 * math.sin(phase)],
            dtype=torch.float64,
        )
        yaw, pitch = 0.25 * math.sin(phase), 0.15 * math.cos(phase)  # head turn, rad
        image = torch.full((image_size * ss * image_size * ss, 3), 0.8, dtype=torch.float64)
        image *= torch.tensor([0.95, 0.75, 0.65], dtype=torch.float64)  # skin
        masks, poses, inits = [], [], []
        for ei, side in enumerate((-1.0, 1.0)):
            c = head + torch.tensor(
                [side * 31.0 * math.cos(yaw), 0.0, side * 31.0 * math.sin(yaw)], dtype=torch.float64
            )  # half the inter-pupil distance
            to_cam = -c / c.norm()
            g = _rot(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), yaw) @ to_cam
            g = _rot(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), pitch) @ g
            rgb, hit = render_eye_rays(scene, dirs, c, g / g.norm(), iris_angular)
            image[hit] = rgb[hit]
            mask = hit.reshape(image_size * ss, image_size * ss).double()
            mask = torch.nn.functional.avg_pool2d(mask[None, None], ss)[0, 0] >= 0.5
            masks.append(mask)
            poses.append({"c": c.tolist(), "g": (g / g.norm()).tolist()})
        image = image.reshape(1, image_size * ss, image_size * ss, 3).permute(0, 3, 1, 2)
        image = torch.nn.functional.avg_pool2d(image, ss)[0].permute(1, 2, 0)
        image = (
            image + noise * torch.randn(image.shape, generator=gen, dtype=torch.float64)
        ).clamp(0, 1)
        Image.fromarray((image.numpy() * 255).round().astype(np.uint8)).save(
            root / "images" / f"{fi:04d}.png"
        )
        names = []
        for ei, mask in enumerate(masks):
            names.append(f"masks/{fi:04d}_{ei}.png")
            Image.fromarray(mask.numpy().astype(np.uint8) * 255).save(root / names[-1])
            c0, g0 = pose_from_mask(mask, k)
            axis = torch.randn(3, generator=gen, dtype=torch.float64)
            axis = (
                axis - (axis @ g0) * g0
            )  # perpendicular to g: the axis moves by exactly the angle
            g0 = _rot(axis, math.radians(pose_noise_deg)) @ g0
            c0 = c0 + pose_noise_mm * torch.randn(3, generator=gen, dtype=torch.float64)
            inits.append({"c": c0.tolist(), "g": (g0 / g0.norm()).tolist()})
        frames.append({"image": f"images/{fi:04d}.png", "masks": names})
        gt_poses.append(poses)
        init_poses.append(inits)
    (root / "cameras.json").write_text(json.dumps({"K": k.tolist(), "frames": frames}, indent=1))
    (root / "poses_init.json").write_text(json.dumps({"poses": init_poses}))
    (root / "gt.json").write_text(
        json.dumps(
            {
                "poses": gt_poses,
                "scene": scene.to_dict(),
                "iris_angular": iris_angular,
                "eye_z": eye_z,
            }
        )
    )
    return root


def load_ground_truth(root: str | Path) -> dict | None:
    """gt.json of a synthetic sequence, or None for real captures."""
    path = Path(root) / "gt.json"
    return json.loads(path.read_text()) if path.is_file() else None
