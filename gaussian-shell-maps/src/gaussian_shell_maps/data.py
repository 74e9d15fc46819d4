"""Data: SHHQ / DeepFashion in the official layout, and a synthetic mannequin set.

Real data (official `dataset_tool.py` output, unzipped):
    <root>/dataset.json   {"labels": [["<relative image path>", [107 floats]], ...]}
    <root>/<images>       PNG/JPG, RGB on a white background (SHHQ is 1024 x 512, padded to square)
A label row is camera (25) + SMPL global_orient (3), body_pose (69), betas (10), see cameras.py.

Synthetic data (offline default): the procedural SMPL-format mannequin, posed at random and
textured procedurally (shirt / trousers / skin / shoes colours per identity, horizontal stripes),
rendered with the same splatting renderer from random yaw around the body. Same label layout, so
it goes through the same code path as the real sets.

Shapes: B batch, H image resolution.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from . import shells as sh
from .cameras import LABEL_DIM, make_label, normalized_intrinsics, orbit_cameras, split_label
from .render import render_gaussians
from .template import BodyTemplate

CAMERA_RADIUS = 3.6
FOV_DEG = 30.0
# joint -> garment: 0 shirt, 1 trousers, 2 skin, 3 shoes
_PART = {0: 1, 1: 1, 2: 1, 4: 1, 5: 1, 7: 3, 8: 3, 10: 3, 11: 3, 3: 0, 6: 0, 9: 0, 13: 0, 14: 0,
         16: 0, 17: 0, 12: 2, 15: 2, 18: 2, 19: 2, 20: 2, 21: 2, 22: 2, 23: 2}


def random_pose(batch: int, generator: torch.Generator, spread: float = 1.0) -> torch.Tensor:
    """Plausible random SMPL body poses [B, 69] (axis-angle for joints 1..23): arms lowered
    from the T-pose, bent elbows and knees, small spine/neck motion."""
    pose = torch.zeros(batch, 23, 3)

    def rnd(lo, hi):
        return lo + (hi - lo) * torch.rand(batch, generator=generator) * spread

    pose[:, 15, 2] = -1.1 + rnd(-0.3, 0.5)  # L shoulder (joint 16) down about z
    pose[:, 16, 2] = 1.1 - rnd(-0.3, 0.5)  # R shoulder (joint 17)
    pose[:, 17, 1] = -rnd(0.0, 1.2)  # L elbow (joint 18)
    pose[:, 18, 1] = rnd(0.0, 1.2)  # R elbow (joint 19)
    pose[:, 0, 0] = rnd(-0.4, 0.3)  # L hip (joint 1) swing
    pose[:, 1, 0] = rnd(-0.4, 0.3)  # R hip (joint 2)
    pose[:, 3, 0] = rnd(0.0, 0.6)  # L knee (joint 4)
    pose[:, 4, 0] = rnd(0.0, 0.6)  # R knee (joint 5)
    pose[:, 2, 1] = rnd(-0.3, 0.3)  # spine1 twist
    pose[:, 11, 0] = rnd(-0.2, 0.2)  # neck nod
    return pose.reshape(batch, 69)


def random_labels(batch: int, generator: torch.Generator, pose_spread: float = 1.0) -> torch.Tensor:
    """Labels [B, 107] with yaw ~ U(-pi, pi), pitch ~ U(-0.1, 0.2), random pose, betas ~ N(0, 0.5)."""
    yaw = (torch.rand(batch, generator=generator) * 2 - 1) * math.pi
    pitch = torch.rand(batch, generator=generator) * 0.3 - 0.1
    c2w = orbit_cameras(yaw, pitch, CAMERA_RADIUS)
    betas = torch.zeros(batch, 10)
    betas[:, :2] = torch.randn(batch, 2, generator=generator) * 0.5
    return make_label(c2w, normalized_intrinsics(FOV_DEG, batch), torch.zeros(batch, 3),
                      random_pose(batch, generator, pose_spread), betas)


class SyntheticMannequins(Dataset):
    """Renders of procedurally textured mannequins; items are (image [3, H, H] in [-1, 1], label)."""

    def __init__(self, template: BodyTemplate, num_images: int, resolution: int, seed: int = 0,
                 num_points: int = 4000, batch: int = 16):
        gen = torch.Generator().manual_seed(seed)
        sites = sh.sample_sites(template, 1, num_points, gen)
        part = torch.tensor([_PART[int(j)] for j in template.lbs_weights.argmax(1)])
        site_part = part[template.faces[sites["face"], 0]]  # [P]
        site_v = sh.site_uvs(template, sites["face"], sites["bary"])[:, 1]
        shell = template.v_template[None]  # [1, V, 3]
        self.labels = random_labels(num_images, gen)
        images = []
        for start in range(0, num_images, batch):
            lab = self.labels[start:start + batch]
            b = lab.shape[0]
            palette = torch.rand(b, 4, 3, generator=gen)  # per-identity garment colours
            palette[:, 2] = torch.tensor([0.87, 0.68, 0.55]) * (0.6 + 0.4 * torch.rand(b, 1, generator=gen))
            freq = 20 + 40 * torch.rand(b, 1, generator=gen)
            stripes = 0.75 + 0.25 * torch.sign(torch.sin(freq * site_v[None]))  # [b, P]
            colors = palette[:, site_part] * torch.where(site_part[None] == 0, stripes, 1.0)[..., None]
            cam = split_label(lab, resolution)
            verts, _ = sh.pose_shells(template, shell, cam["betas"], cam["body_pose"],
                                      cam["global_orient"])
            means = sh.interpolate_sites(verts, template.faces, sites["shell"], sites["face"],
                                         sites["bary"])
            n = means.shape[1]
            out = render_gaussians(
                means, torch.tensor([1.0, 0, 0, 0]).expand(b, n, 4), torch.full((b, n, 3), 0.012),
                torch.full((b, n), 0.95), colors.clamp(0, 1), cam["viewmats"], cam["Ks"],
                resolution, resolution, background=torch.ones(b, 3))
            images.append(out["image"].permute(0, 3, 1, 2) * 2 - 1)
        self.images = torch.cat(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[idx], self.labels[idx]


class HumanImageFolder(Dataset):
    """SHHQ / DeepFashion images + dataset.json labels (official layout, see module docstring)."""

    def __init__(self, root: str | Path, resolution: int):
        self.root, self.resolution = Path(root), resolution
        meta = self.root / "dataset.json"
        if not meta.is_file():
            raise FileNotFoundError(
                f"{meta} not found: expected <root>/dataset.json with "
                '{"labels": [["img.png", [107 floats]], ...]} and the images under <root>/')
        labels = json.loads(meta.read_text()).get("labels")
        if not labels:
            raise ValueError(f"{meta}: no 'labels' entries (each image needs camera + SMPL)")
        self.files, rows = [], []
        for entry in labels:
            name, row = entry[0], entry[1] if len(entry) > 1 else None
            if row is None or len(row) != LABEL_DIM:
                raise ValueError(f"{meta}: label of {name!r} has {0 if row is None else len(row)}"
                                 f" values, expected {LABEL_DIM} (camera 25 + SMPL 82)")
            self.files.append(self.root / name)
            rows.append(row)
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} labelled images missing, e.g. {missing[:3]}")
        labelled = {f.resolve() for f in self.files}
        unlabelled = [p.name for p in self.root.rglob("*") if p.suffix.lower() in
                      {".png", ".jpg", ".jpeg"} and p.resolve() not in labelled]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} images have no pose/camera entry in {meta}, "
                             f"e.g. {unlabelled[:3]}")
        self.labels = torch.tensor(np.asarray(rows, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        img = torch.from_numpy(np.asarray(Image.open(self.files[idx]).convert("RGB"))).float()
        img = img.permute(2, 0, 1) / 127.5 - 1  # [3, h, w] in [-1, 1]
        h, w = img.shape[1:]
        if h != w:  # SHHQ is tall: pad the width with white to a square (official crops/pads)
            pad = (h - w) // 2
            img = F.pad(img, (pad, h - w - pad, 0, 0), value=1.0) if h > w else F.pad(
                img, (0, 0, (w - h) // 2, w - h - (w - h) // 2), value=1.0)
        img = F.interpolate(img[None], size=self.resolution, mode="area")[0]
        return img, self.labels[idx]
