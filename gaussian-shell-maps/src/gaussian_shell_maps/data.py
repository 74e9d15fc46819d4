"""Data: SHHQ / DeepFashion in the official layout, and a synthetic mannequin set.

Real data (the official `training/dataset.py` ImageFolderDataset layouts, unzipped):
    <root>/dataset.mat    MATLAB cell array `labels` [N, 2]: {file name, [1, 107] label}
                          (official SHHQ / DeepFashion training; read with scipy.io.loadmat)
 or <root>/dataset.json   {"labels": {"images/0001.png": [107 floats], ...}} (official reader)
                          or {"labels": [["images/0001.png", [107 floats]], ...]} (dataset_tool)
    <root>/images/...     PNG/JPG, RGB (SHHQ: 1024 x 512, tall)
    <root>/masks/...      optional: the mask of <file> is <file> with "images" -> "masks"
                          (official `_load_raw_mask`); the image is composited onto the
                          background colour with it
A label row is camera (25) + SMPL global_orient (3), body_pose (69), betas (10), see cameras.py.
Tall images are padded to square (official: zero padding, which the mask turns into background)
and, as the official `get_label`, the normalised fx (label[16]) is divided by H / W of the raw
images (intrinsics normalised by the unpadded width become those of the padded square).

Synthetic data (offline default): the procedural SMPL-format mannequin, posed at random and
textured procedurally (shirt / trousers / skin / shoes colours per identity, horizontal stripes),
rendered with the same splatting renderer from random yaw around the body. Same label layout, so
it goes through the same code path as the real sets.

Shapes: B batch, H image resolution.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from . import shells as sh
from .cameras import (
    LABEL_DIM,
    make_label,
    normalized_intrinsics,
    official_labels,
    orbit_cameras,
    split_label,
)
from .render import render_gaussians
from .runtime import DataError, MissingPathError
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


def random_labels(batch: int, generator: torch.Generator, pose_spread: float = 1.0,
                  convention: str = "ours") -> torch.Tensor:
    """Labels [B, 107] with yaw ~ U(-pi, pi), random pose, betas ~ N(0, 0.5).

    convention "ours": the camera orbits the upright body (pitch ~ U(-0.1, 0.2), 3.6 m, 30 deg
    field of view); "official": the SHHQ / DeepFashion layout (fixed camera on -z, body flipped
    by global_orient = R_x(pi) R_y(yaw), see cameras.official_labels).
    """
    yaw = (torch.rand(batch, generator=generator) * 2 - 1) * math.pi
    pitch = torch.rand(batch, generator=generator) * 0.3 - 0.1
    betas = torch.zeros(batch, 10)
    betas[:, :2] = torch.randn(batch, 2, generator=generator) * 0.5
    pose = random_pose(batch, generator, pose_spread)
    if convention == "official":
        return official_labels(pose, betas, yaw)
    c2w = orbit_cameras(yaw, pitch, CAMERA_RADIUS)
    return make_label(c2w, normalized_intrinsics(FOV_DEG, batch), torch.zeros(batch, 3), pose,
                      betas)


class SyntheticMannequins(Dataset):
    """Renders of procedurally textured mannequins; items are (image [3, H, H] in [-1, 1], label).

    Each identity wears 4 flat garment colours (shirt with stripes, trousers, skin, shoes) on
    the body parts of `_PART`; `render_parts(labels)` renders that part layout for any label
    (the claim check's pose-conditioned measures)."""

    NUM_PARTS = 4

    def __init__(self, template: BodyTemplate, num_images: int, resolution: int, seed: int = 0,
                 num_points: int = 4000, batch: int = 16, convention: str = "ours"):
        gen = torch.Generator().manual_seed(seed)
        self.template, self.resolution = template, resolution
        self.sites = sh.sample_sites(template.v_template, template.faces, 1, num_points, gen)
        part = torch.tensor([_PART[int(j)] for j in template.lbs_weights.argmax(1)])
        self.site_part = part[template.faces[self.sites["face"], 0]]  # [P]
        # stripes along the body: the capsule charts' v runs along each bone
        site_v = (sh.site_uvs(template.vt, template.ft, self.sites["face"], self.sites["bary"])[
            :, 1] if template.vt is not None else template.v_template[template.faces[
                self.sites["face"], 0], 1])
        self.labels = random_labels(num_images, gen, convention=convention)
        images = []
        for start in range(0, num_images, batch):
            lab = self.labels[start:start + batch]
            b = lab.shape[0]
            palette = torch.rand(b, 4, 3, generator=gen)  # per-identity garment colours
            palette[:, 2] = torch.tensor([0.87, 0.68, 0.55]) * (0.6 + 0.4 * torch.rand(b, 1, generator=gen))
            freq = 20 + 40 * torch.rand(b, 1, generator=gen)
            stripes = 0.75 + 0.25 * torch.sign(torch.sin(freq * site_v[None]))  # [b, P]
            colors = palette[:, self.site_part] * torch.where(self.site_part[None] == 0, stripes,
                                                              1.0)[..., None]
            images.append(self._render(lab, colors.clamp(0, 1), torch.ones(b, 3)).permute(
                0, 3, 1, 2) * 2 - 1)
        self.images = torch.cat(images)

    def _render(self, labels: torch.Tensor, colors: torch.Tensor, background: torch.Tensor
                ) -> torch.Tensor:
        """The mannequin's sites posed by `labels` [B, 107] with per-site colours [B, P, C]."""
        cam = split_label(labels, self.resolution)
        verts, _ = sh.pose_shells(self.template, self.template.v_template[None], cam["betas"],
                                  cam["body_pose"], cam["global_orient"])
        means = sh.interpolate_sites(verts, self.template.faces, self.sites["shell"],
                                     self.sites["face"], self.sites["bary"])
        b, n = means.shape[:2]
        out = render_gaussians(
            means, torch.tensor([1.0, 0, 0, 0]).expand(b, n, 4), torch.full((b, n, 3), 0.012),
            torch.full((b, n), 0.95), colors, cam["viewmats"], cam["Ks"], self.resolution,
            self.resolution, background=background)
        return out["image"]  # [B, H, W, C]

    @torch.no_grad()
    def render_parts(self, labels: torch.Tensor) -> torch.Tensor:
        """Part layout of the conditioning bodies: [B, H, W] long, -1 = background, else the
        garment id (0 shirt, 1 trousers, 2 skin, 3 shoes) covering the pixel most."""
        b = labels.shape[0]
        onehot = F.one_hot(self.site_part, self.NUM_PARTS).float().expand(b, -1, -1)
        cover = self._render(labels, onehot, torch.zeros(b, self.NUM_PARTS))  # [B, H, W, 4]
        return torch.where(cover.sum(-1) > 0.5, cover.argmax(-1), -1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[idx], self.labels[idx]


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BACKGROUND_RGB = {"white": (1.0, 1.0, 1.0), "gray": (0.5, 0.5, 0.5)}
LAYOUT_HINT = ("expected <root>/dataset.mat (cell array labels: {name, [1, 107]}) or "
               "<root>/dataset.json {\"labels\": {\"images/x.png\": [107 floats]}} and the images "
               "(+ optional masks/) under <root>")


def read_labels(root: str | Path) -> tuple[list[str], np.ndarray, Path]:
    """(file names, labels [N, 107] float32, label file) from dataset.mat or dataset.json.

    Accepts the official dict form {"labels": {name: row}} and the list-of-pairs form
    {"labels": [[name, row], ...]}; a repeated name keeps its last row (as `dict(labels)`).
    Raises DataError naming the expected layout for anything else.
    """
    root = Path(root)
    mat, js = root / "dataset.mat", root / "dataset.json"
    if mat.is_file():
        pairs, where = _read_mat(mat), mat
    elif js.is_file():
        pairs, where = _read_json(js), js
    else:
        raise MissingPathError(f"no dataset.mat or dataset.json in {root}", LAYOUT_HINT)
    if not pairs:
        raise DataError(f"{where}: no label entries", LAYOUT_HINT)
    table: dict[str, np.ndarray] = {}
    for name, row in pairs:
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: an entry has no file name ({name!r})", LAYOUT_HINT)
        try:
            vec = np.asarray(row, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError, OverflowError) as err:
            raise DataError(f"{where}: label of {name!r} is not a list of numbers",
                            LAYOUT_HINT) from err
        if vec.shape[0] != LABEL_DIM:
            raise DataError(f"{where}: label of {name!r} has {vec.shape[0]} values, expected "
                            f"{LABEL_DIM} (camera 25 + SMPL 82)", LAYOUT_HINT)
        if not np.isfinite(vec).all():
            raise DataError(f"{where}: label of {name!r} holds non-finite values")
        table[name.replace("\\", "/")] = vec.astype(np.float32)
    names = sorted(n for n in table if Path(n).suffix.lower() in IMAGE_EXTENSIONS)
    if not names:
        raise DataError(f"{where}: no entry names an image file ({', '.join(IMAGE_EXTENSIONS)})",
                        LAYOUT_HINT)
    return names, np.stack([table[n] for n in names]), where


def _read_json(path: Path) -> list:
    try:
        labels = json.loads(path.read_text(encoding="utf-8")).get("labels")
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, ...
        raise DataError(f"{path} is not valid JSON ({type(err).__name__})", LAYOUT_HINT) from err
    except AttributeError as err:  # top level is not an object
        raise DataError(f"{path}: top level is not an object with 'labels'", LAYOUT_HINT) from err
    if isinstance(labels, dict):
        return list(labels.items())
    if isinstance(labels, list) and all(isinstance(e, list) and len(e) == 2 for e in labels):
        return [tuple(e) for e in labels]
    raise DataError(f"{path}: 'labels' is neither {{name: row}} nor [[name, row], ...]",
                    LAYOUT_HINT)


def _read_mat(path: Path) -> list:
    import scipy.io

    try:
        cells = scipy.io.loadmat(str(path))["labels"]
    except KeyError as err:
        raise DataError(f"{path}: no variable 'labels'", LAYOUT_HINT) from err
    except Exception as err:  # scipy raises many types for a corrupted file
        raise DataError(f"{path} is not a readable MATLAB file ({type(err).__name__})",
                        LAYOUT_HINT) from err
    try:  # official: name = str(x[0][0]), row = x[1][0] per cell-array row
        return [(str(np.asarray(x[0]).reshape(-1)[0]), np.asarray(x[1]).reshape(-1))
                for x in cells]
    except (IndexError, TypeError, ValueError) as err:
        raise DataError(f"{path}: 'labels' is not an [N, 2] cell array of {{name, row}}",
                        LAYOUT_HINT) from err


class HumanImageFolder(Dataset):
    """SHHQ / DeepFashion images + labels in the official layouts (see module docstring).

    Items are (image [3, R, R] in [-1, 1] on the background colour, label [107]).
    """

    def __init__(self, root: str | Path, resolution: int, background: str = "white",
                 divide_fx: bool = True):
        self.root, self.resolution = Path(root), resolution
        if not self.root.is_dir():
            raise MissingPathError(f"data_root {self.root} is not a folder", LAYOUT_HINT)
        names, labels, where = read_labels(self.root)
        self.files = [self.root / n for n in names]
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise MissingPathError(f"{len(missing)} images named in {where.name} are missing, "
                                   f"e.g. {missing[:3]}", LAYOUT_HINT)
        self.mask_files = self._mask_files(names)
        self._warn_unlabelled(names)
        self.background = torch.tensor(BACKGROUND_RGB.get(background, (1.0, 1.0, 1.0)))
        self.deepfashion = "deepfashion" in str(self.root).lower()  # official mask binarising
        self.aspect = self._raw_aspect(self.files[0])
        if divide_fx:  # official get_label: fx / (H / W) of the raw images (not --old_code)
            labels = labels.copy()
            labels[:, 16] /= self.aspect
        self.labels = torch.from_numpy(labels)

    def _mask_files(self, names: list[str]) -> list[Path] | None:
        if not (self.root / "masks").is_dir():
            return None
        files = [self.root / n.replace("images", "masks") for n in names]
        missing = [str(f) for f, n in zip(files, names) if not f.is_file() or "images" not in n]
        if missing:
            raise MissingPathError(f"{self.root}/masks exists but {len(missing)} masks are "
                                   f"missing, e.g. {missing[:3]}",
                                   "the mask of images/x.png is masks/x.png (official layout)")
        return files

    def _warn_unlabelled(self, names: list[str]) -> None:
        labelled = {n.replace("\\", "/") for n in names}
        extra = [str(p.relative_to(self.root)) for p in self.root.rglob("*")
                 if p.suffix.lower() in IMAGE_EXTENSIONS and "masks" not in p.relative_to(
                     self.root).parts and str(p.relative_to(self.root)) not in labelled]
        if extra:  # the official reader lists only the labelled files; say so once
            warnings.warn(f"{len(extra)} images under {self.root} have no label and are not "
                          f"used, e.g. {extra[:3]}", stacklevel=3)

    @staticmethod
    def _raw_aspect(path: Path) -> float:
        from PIL import Image

        try:
            with Image.open(path) as img:
                w, h = img.size
        except Exception as err:  # PIL raises many types for a broken file
            raise DataError(f"{path} is not a readable image ({type(err).__name__})") from err
        if not w or not h:
            raise DataError(f"{path} has an empty image size {w}x{h}")
        return h / w

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = _read_image(self.files[idx], "RGB")  # [3, h, w] in [0, 1]
        mask = (_read_mask(self.mask_files[idx], self.deepfashion) if self.mask_files
                else torch.ones(1, *img.shape[1:]))
        if mask.shape[1:] != img.shape[1:]:
            raise DataError(f"mask {self.mask_files[idx]} is {tuple(mask.shape[1:])} but its "
                            f"image is {tuple(img.shape[1:])}")
        img, mask = _pad_square(img), _pad_square(mask)  # zeros: background after compositing
        size = (self.resolution, self.resolution)
        img = F.interpolate(img[None], size=size, mode="bilinear", align_corners=False)[0]
        mask = F.interpolate(mask[None], size=size, mode="bilinear", align_corners=False)[0]
        img = img * mask + self.background[:, None, None] * (1 - mask)
        return img * 2 - 1, self.labels[idx]


def _read_image(path: Path, mode: str) -> torch.Tensor:
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert(mode), dtype=np.float32) / 255.0
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, zlib errors ...
        raise DataError(f"{path} is not a readable image ({type(err).__name__})") from err
    arr = arr[..., None] if arr.ndim == 2 else arr
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _read_mask(path: Path, binarise: bool) -> torch.Tensor:
    """[1, h, w] in [0, 1] (official: mean over channels; DeepFashion: any > 0 is foreground)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB") if im.mode not in ("L", "1", "I", "F", "RGB")
                             else im, dtype=np.float32)
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, zlib errors ...
        raise DataError(f"mask {path} is not a readable image ({type(err).__name__})") from err
    if arr.ndim == 3:
        arr = arr.mean(-1)
    if binarise:
        arr = np.where(arr > 0, 255.0, arr)
    if arr.max(initial=0) > 1:  # 8-bit masks; 0/1 masks are used as they are
        arr = arr / 255.0
    return torch.from_numpy(np.clip(arr, 0, 1))[None]


def _pad_square(img: torch.Tensor) -> torch.Tensor:
    """Zero-pad [C, h, w] to a square, centred (official: tall SHHQ images padded in width)."""
    h, w = img.shape[1:]
    if h > w:
        return F.pad(img, ((h - w) // 2, h - w - (h - w) // 2, 0, 0))
    if w > h:
        return F.pad(img, (0, 0, (w - h) // 2, w - h - (w - h) // 2))
    return img
