"""Official capture folders (HadiZayer/eyenerf layout) -> the cornea rays of every eye image.

Layout written by the official `gen_masks_offline.py` (one folder per capture):
    <capture>/*.tif                      16-bit RGB frames (PNG frames are read too)
    <capture>/train_masks/<name>_<i>.png one filled 0/255 mask per eye, full image size
    <capture>/transforms_train.json      and an identical transforms_test.json:
        {"image_width": W, "image_height": H,
         "frames": [{"file_path": "/abs/<capture>/<name>.tif",        one entry per eye:
                     "mask_path": "/abs/<capture>/train_masks/<name>_<i>.png",
                     "ellipse_params": [cx, cy, rx, ry, theta],       rx = half the mask's width
                     "fl_x": focal_mm * W / 13.2,                     13.2 mm sensor width
                     "order": "left_eye" | "right_eye",
                     "transform_matrix": 4x4 placeholder camera-to-world}, ...]}
    <capture>/gt.json                    ours, synthetic captures only: true poses and scene
Paths that do not exist are resolved against the capture folder (its file name, then the path's
tail below the capture folder's name), so a capture that was moved still loads.
Shapes: M eye images (frame entries), R cornea rays (pixels) over all of them.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .cornea import (
    ELLIPSOID,
    CapShape,
    apex_positions,
    erode,
    initial_depth,
    mask_limbus_official,
    trace_cornea,
)
from .runtime import DataError, MissingPathError

SENSOR_WIDTH_MM = 13.2  # official fl_x = EXIF focal (mm) * W / 13.2 (a 1-inch sensor)
# OpenCV camera axes -> the nerfstudio/OpenGL camera axes that transform_matrix expects
CV_TO_GL = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


@dataclass
class Capture:
    """Cornea pixels of all eye images. Per ray: eye image, pixel, colour; per eye image: the
    official initial pose inputs and camera."""

    eye: torch.Tensor  # [R] eye-image index
    pixels: torch.Tensor  # [R, 2] (u, v) integer pixel
    rgb: torch.Tensor  # [R, 3] colour in [0, 1]
    centre_px: torch.Tensor  # [M, 2] ellipse centre (u, v), floored as the official .long()
    radius_px: torch.Tensor  # [M] limbus radius in pixels
    fx: torch.Tensor  # [M]
    fy: torch.Tensor  # [M]
    depth_mm: torch.Tensor  # [M] official initial apex depth 5.5186 * fx / r_px
    is_left: torch.Tensor  # [M] bool, order == "left_eye"
    c2w: torch.Tensor  # [M, 3, 4] camera-to-world (transform_matrix)
    width: int
    height: int
    image_paths: list[str]  # [M]
    mask_paths: list[str]  # [M]
    frame_ids: list[int]  # [M] index of each kept entry in the transforms file
    skipped: list[str] = field(default_factory=list)
    root: str = ""

    def __len__(self) -> int:
        return self.eye.shape[0]

    @property
    def num_eyes(self) -> int:
        return self.centre_px.shape[0]

    def camera_dirs(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """OpenCV camera-frame directions through the pixel centres of rays `index` (all: None),
        principal point (W/2, H/2) as the official data parser. [R, 3] (not unit)."""
        pix = self.pixels if index is None else self.pixels[index]
        eye = self.eye if index is None else self.eye[index]
        u = (pix[:, 0].float() + 0.5 - self.width / 2) / self.fx[eye]
        v = (pix[:, 1].float() + 0.5 - self.height / 2) / self.fy[eye]
        return torch.stack([u, v, torch.ones_like(u)], dim=-1)

    def to(self, device: torch.device | str) -> Capture:
        out = Capture(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        for name in ("eye", "pixels", "rgb", "centre_px", "radius_px", "fx", "fy", "depth_mm",
                     "is_left", "c2w"):
            setattr(out, name, getattr(self, name).to(device))
        return out


def resolve_path(path: str, root: Path) -> Path:
    """The path as written if it exists; else relative to the capture folder: the path itself
    (relative paths, "./x"), its tail below the capture folder's name, then its file name."""
    if os.path.exists(path):
        return Path(path)
    parts = Path(path.replace("\\", "/")).parts
    candidates = [root / path.replace("./", "", 1)] if not os.path.isabs(path) else []
    if root.name in parts:
        tail = parts[len(parts) - 1 - parts[::-1].index(root.name) + 1:]
        candidates.append(root.joinpath(*tail))
    candidates += [root / Path(*parts[-2:]), root / parts[-1]] if parts else []
    for cand in candidates:
        if cand.exists():
            return cand
    raise MissingPathError(f"missing file {path}", f"also looked in {root}")


def read_image(path: Path, tiff_scale: str = "dtype") -> np.ndarray:
    """RGB float32 [H, W, 3] in [0, 1]. TIFF via tifffile: `tiff_scale="dtype"` divides by the
    integer type's maximum; "official" divides by 65535 if the image's maximum exceeds 256, else
    by 255 (the released rule, which mis-scales very dark 16-bit frames)."""
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            raw = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as im:
                raw = np.asarray(im)
    except Exception as err:  # truncated, corrupt or foreign file
        raise DataError(f"cannot read image {path}: {type(err).__name__}",
                        "a 16-bit TIFF or PNG") from err
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=2)
    if raw.ndim != 3 or raw.shape[2] not in (3, 4) or raw.dtype.kind not in "uif":
        raise DataError(f"image {path} has shape {raw.shape} / {raw.dtype}", "expected H x W x 3")
    raw = raw[..., :3]
    if raw.dtype.kind == "f":
        return raw.astype(np.float32)
    if tiff_scale == "official" and path.suffix.lower() in (".tif", ".tiff"):
        scale = 65535.0 if raw.max() > 256 else 255.0
    else:
        scale = float(np.iinfo(raw.dtype).max)
    return (raw.astype(np.float32) / scale).clip(0.0, 1.0)


def read_mask(path: Path) -> torch.Tensor:
    """Non-zero pixels of a mask PNG, [H, W] bool (first channel of a colour mask)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except Exception as err:
        raise DataError(f"cannot read mask {path}: {type(err).__name__}", "a 0/255 PNG") from err
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DataError(f"mask {path} has shape {arr.shape}", "expected H x W")
    return torch.from_numpy(arr != 0)


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{what} = {value!r} is not a finite number", where)
    return float(value)


def _read_transforms(root: Path, split: str) -> dict:
    path = root / f"transforms_{split}.json"
    if not root.is_dir():
        raise MissingPathError(f"capture folder not found: {root}", "data_root")
    if not path.is_file():
        raise MissingPathError(f"missing {path.name} in {root}", "official capture layout")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not valid JSON: {type(err).__name__}", str(path)) from err
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise DataError(f"{path} has no 'frames' list", "official capture layout")
    for key in ("image_width", "image_height"):
        value = meta.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise DataError(f"{path}: {key} = {value!r} is not a positive integer", str(path))
    return meta


def _frame_focal(frame: dict, meta: dict, where: str) -> float:
    if "fl_x" in frame:
        fl = _number(frame["fl_x"], "fl_x", where)
    elif "fl_x" in meta:
        fl = _number(meta["fl_x"], "fl_x", where)
    elif "camera_angle_x" in meta:
        angle = _number(meta["camera_angle_x"], "camera_angle_x", where)
        fl = 0.5 * meta["image_width"] / math.tan(0.5 * angle)
    else:
        raise DataError(f"{where}: no fl_x (nor camera_angle_x)", "focal length in pixels")
    if fl <= 0:  # the official script writes 0 when the EXIF focal length is missing
        raise DataError(f"{where}: fl_x = {fl} (no focal length in the EXIF?)", "set fl_x")
    return fl


def _c2w(frame: dict, where: str) -> torch.Tensor:
    try:
        mat = torch.tensor(frame["transform_matrix"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError) as err:
        raise DataError(f"{where}: transform_matrix missing or malformed", "a 4 x 4 list") from err
    if mat.shape != (4, 4) or not torch.isfinite(mat).all():
        raise DataError(f"{where}: transform_matrix has shape {tuple(mat.shape)}", "4 x 4")
    return mat[:3]


def _limbus(frame: dict, mask: torch.Tensor, where: str) -> tuple[float, float, float] | None:
    params = frame.get("ellipse_params")
    if params is None or params == []:
        return mask_limbus_official(mask)
    if not isinstance(params, list) or len(params) not in (4, 5):
        raise DataError(f"{where}: ellipse_params must be [cx, cy, rx, ry(, theta)]", where)
    cx, cy, rx = (_number(v, "ellipse_params", where) for v in params[:3])
    return (cx, cy, rx) if rx > 0 else None


def load_capture(
    root: str | Path,
    split: str = "train",
    used_eye: str = "both",
    erode_px: int = 13,
    cap: CapShape = ELLIPSOID,
    on_bad_frame: str = "skip",
    tiff_scale: str = "dtype",
) -> Capture:
    """Read an official capture: each frame entry is one eye image (its image file is listed
    once per eye). The sampled pixels are the mask's pixels whose camera ray hits the cap at the
    official initial pose, eroded with an erode_px x erode_px square (official: 13).

    used_eye: "both", "left_eye" or "right_eye" (official dataparser option). on_bad_frame:
    "skip" leaves out an entry whose mask is empty, of the wrong size, or has no pixel left after
    erosion (a warning names it; the count is in `skipped`); "error" raises DataError.
    """
    root = Path(root)
    meta = _read_transforms(root, split)
    width, height = meta["image_width"], meta["image_height"]
    images: dict[Path, np.ndarray] = {}
    per_eye: list[dict] = []
    skipped: list[str] = []
    for fi, frame in enumerate(meta["frames"]):
        where = f"transforms_{split}.json frame {fi}"
        if not isinstance(frame, dict) or "file_path" not in frame or "mask_path" not in frame:
            raise DataError(f"{where}: needs file_path and mask_path", "official capture layout")
        order = frame.get("order", "left_eye")  # official default when absent
        if order not in ("left_eye", "right_eye"):
            raise DataError(f"{where}: order = {order!r}", "left_eye or right_eye")
        if used_eye != "both" and order != used_eye:
            continue
        if not isinstance(frame["file_path"], str) or not isinstance(frame["mask_path"], str):
            raise DataError(f"{where}: file_path/mask_path must be strings", where)
        image_path = resolve_path(frame["file_path"], root)
        mask_path = resolve_path(frame["mask_path"], root)
        fl, c2w = _frame_focal(frame, meta, where), _c2w(frame, where)
        if image_path not in images:
            images[image_path] = read_image(image_path, tiff_scale)
        image = images[image_path]
        mask = read_mask(mask_path)
        problem = None
        if image.shape[:2] != (height, width) or mask.shape != (height, width):
            problem = f"image {image.shape[:2]} / mask {tuple(mask.shape)} != ({height}, {width})"
        limbus = None if problem else _limbus(frame, mask, where)
        if problem is None and limbus is None:
            problem = "empty mask"
        if problem is None:
            cx, cy, r = limbus
            centre = torch.tensor([math.floor(cx), math.floor(cy)], dtype=torch.float32)
            depth = float(initial_depth(torch.tensor(r), torch.tensor(fl)))
            pixels = _sampling_pixels(mask, centre, depth, fl, width, height, erode_px, cap)
            if pixels.shape[0] == 0:
                problem = f"no cornea pixel left after the {erode_px} x {erode_px} erosion"
        if problem is not None:
            if on_bad_frame == "error":
                raise DataError(f"{where} ({mask_path.name}): {problem}", "on_bad_frame=skip")
            warnings.warn(f"skipping {where} ({mask_path.name}): {problem}", stacklevel=2)
            skipped.append(f"frame {fi}: {problem}")
            continue
        rgb = torch.from_numpy(image[pixels[:, 1].numpy(), pixels[:, 0].numpy()])
        per_eye.append(dict(pixels=pixels, rgb=rgb, centre=centre, radius=r, fx=fl, depth=depth,
                            left=order == "left_eye", c2w=c2w, image=str(image_path),
                            mask=str(mask_path), fi=fi))
    if not per_eye:
        raise DataError(f"{root}: no usable eye image ({len(skipped)} skipped)", str(skipped[:2]))
    return _assemble(per_eye, width, height, skipped, str(root))


def _sampling_pixels(mask, centre, depth, fl, width, height, erode_px, cap) -> torch.Tensor:
    """(u, v) pixels of mask & (initial-pose ray hits the cap), eroded. [K, 2] int64."""
    vs, us = torch.nonzero(mask, as_tuple=True)
    dirs = torch.stack([(us.float() + 0.5 - width / 2) / fl, (vs.float() + 0.5 - height / 2) / fl,
                        torch.ones(us.shape[0])], dim=-1)
    n = us.shape[0]
    one = torch.ones(n)
    apex = apex_positions(centre.expand(n, 2), depth * one, fl * one, fl * one, width * one,
                          height * one, 0 * one, torch.zeros(n, 2))
    hit = trace_cornea(dirs, apex, torch.eye(3).expand(n, 3, 3), cap)["hit"]
    composed = torch.zeros_like(mask)
    composed[vs[hit], us[hit]] = True
    vs, us = torch.nonzero(erode(composed, erode_px), as_tuple=True)
    return torch.stack([us, vs], dim=-1)


def _assemble(per_eye: list[dict], width: int, height: int, skipped: list[str], root: str):
    counts = [e["pixels"].shape[0] for e in per_eye]
    return Capture(
        eye=torch.repeat_interleave(torch.arange(len(per_eye)), torch.tensor(counts)),
        pixels=torch.cat([e["pixels"] for e in per_eye]),
        rgb=torch.cat([e["rgb"] for e in per_eye]).float(),
        centre_px=torch.stack([e["centre"] for e in per_eye]),
        radius_px=torch.tensor([e["radius"] for e in per_eye], dtype=torch.float32),
        fx=torch.tensor([e["fx"] for e in per_eye], dtype=torch.float32),
        fy=torch.tensor([e["fx"] for e in per_eye], dtype=torch.float32),  # official fy = fx
        depth_mm=torch.tensor([e["depth"] for e in per_eye], dtype=torch.float32),
        is_left=torch.tensor([e["left"] for e in per_eye]),
        c2w=torch.stack([e["c2w"] for e in per_eye]),
        width=width,
        height=height,
        image_paths=[e["image"] for e in per_eye],
        mask_paths=[e["mask"] for e in per_eye],
        frame_ids=[e["fi"] for e in per_eye],
        skipped=skipped,
        root=root,
    )


def load_ground_truth(root: str | Path) -> dict | None:
    """gt.json of a synthetic capture (true apex positions, rotations, scene), else None."""
    path = Path(root) / "gt.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path} is not valid JSON", "written by make_synthetic_capture") from err


def camera_to_world(
    points_mm: torch.Tensor, dirs: torch.Tensor, c2w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV camera frame (mm) -> nerfstudio world frame (m) of transform_matrix c2w [N, 3, 4].
    With the official placeholder matrix this is (x, y, z) -> (-x, -z, -y)."""
    rot = c2w[..., :3] @ CV_TO_GL.to(c2w)  # [N, 3, 3]
    origins = torch.einsum("nij,nj->ni", rot, points_mm / 1000.0) + c2w[..., 3]
    return origins, torch.einsum("nij,nj->ni", rot, dirs)
