"""Ray datasets: the procedural sphere scene, NeRF-Blender, nerfstudio and LLFF from local paths.

Every loader returns a `SceneData` at unit scale and then goes through `scale_scene`, which
multiplies camera positions, near/far, bounds and ground-truth depth by k and touches nothing
else (the scene-scaling experiment of the paper, Sec. 6).

Shape legend: N training rays (all pixels of all training views), H W image, V views.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .scene import SphereScene, camera_rig, pinhole_rays, render_rays_exact


@dataclass
class View:
    """One held-out image: rays_o/rays_d [H*W, 3], rgb [H*W, 3], depth [H*W] or None."""

    rays_o: Tensor
    rays_d: Tensor
    rgb: Tensor
    height: int
    width: int
    depth: Tensor | None = None


@dataclass
class SceneData:
    """Training rays (flattened), held-out views and the scene's extent, all at scale k."""

    rays_o: Tensor  # [N, 3]
    rays_d: Tensor  # [N, 3] unit length
    rgb: Tensor  # [N, 3] in [0, 1]
    test_views: list[View]
    near: float
    far: float
    bbox: Tensor  # [2, 3] min / max corner
    scale: float = 1.0
    white_bkgd: bool = True

    @property
    def ray_length(self) -> float:
        """L in the init formula of Sec. 4.2: the sampled extent of every ray."""
        return self.far - self.near


def scale_scene(data: SceneData, k: float) -> SceneData:
    """Scene at scale k: positions, near/far, bounds and depths x k; colours unchanged."""
    if not (isinstance(k, (int, float)) and k > 0 and math.isfinite(k)):
        raise ValueError(f"scene scale factor k must be a finite number > 0, got {k!r}")
    views = [replace(v, rays_o=v.rays_o * k, depth=None if v.depth is None else v.depth * k)
             for v in data.test_views]
    return replace(data, rays_o=data.rays_o * k, test_views=views, near=data.near * k,
                   far=data.far * k, bbox=data.bbox * k, scale=data.scale * k)


# ----------------------------------------------------------------------------- synthetic


def make_synthetic(image_size: int = 32, num_train: int = 24, num_test: int = 4, k: float = 1.0,
                   seed: int = 0, white_bkgd: bool = True) -> SceneData:
    """Analytic spheres seen by a camera rig; ground truth rendered exactly at scale k.

    At k = 1: cameras at radius 3, near 1, far 5 (ray extent L = 4, as Blender's 2..6), scene in
    [-1, 1]^3, vertical field of view 40 degrees.
    """
    if not k > 0:
        raise ValueError(f"scene scale factor k must be > 0, got {k}")
    scene = SphereScene().scaled(k)
    focal = 0.5 * image_size / math.tan(math.radians(20.0))
    near, far, bkgd = 1.0 * k, 5.0 * k, 1.0 if white_bkgd else 0.0

    def views(c2ws: Tensor) -> list[View]:
        out = []
        for c2w in c2ws:
            c2w = c2w.clone()
            c2w[:3, 3] *= k
            o, d = pinhole_rays(c2w, image_size, image_size, focal)
            n = torch.full((o.shape[0],), near)
            gt = render_rays_exact(scene, o.double(), d.double(), n.double(),
                                   n.double() * 0 + far, background=bkgd)
            out.append(View(o, d, gt["rgb"].float(), image_size, image_size,
                            depth=gt["depth"].float()))
        return out

    train = views(camera_rig(num_train, 3.0, seed=seed))
    test = views(camera_rig(num_test, 3.0, seed=seed + 1000))
    return SceneData(rays_o=torch.cat([v.rays_o for v in train]),
                     rays_d=torch.cat([v.rays_d for v in train]),
                     rgb=torch.cat([v.rgb for v in train]), test_views=test, near=near, far=far,
                     bbox=torch.tensor([[-1.1] * 3, [1.1] * 3]) * k, scale=k,
                     white_bkgd=white_bkgd)


# ----------------------------------------------------------------------------- real data


def _load_image(path: Path, downscale: int, white_bkgd: bool) -> Tensor:
    """RGB(A) image -> [H, W, 3] float in [0, 1]; RGBA composited onto white or black."""
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"image file not found: {path}")
    img = Image.open(path)
    if downscale > 1:
        img = img.resize((img.width // downscale, img.height // downscale), Image.LANCZOS)
    arr = torch.from_numpy(np.asarray(img.convert("RGBA" if img.mode in ("RGBA", "LA") else "RGB"),
                                      dtype=np.float32) / 255.0)
    if arr.shape[-1] == 4:
        bkgd = 1.0 if white_bkgd else 0.0
        arr = arr[..., :3] * arr[..., 3:] + bkgd * (1.0 - arr[..., 3:])
    return arr


def _stack_views(images: list[Tensor], c2ws: list[Tensor], focals: list[tuple], names: list[str]
                 ) -> list[View]:
    sizes = {tuple(im.shape[:2]) for im in images}
    if len(sizes) > 1:
        detail = ", ".join(f"{n}: {tuple(im.shape[:2])}" for n, im in zip(names, images))
        raise ValueError(f"images of inconsistent size {sorted(sizes)} ({detail})")
    views = []
    for im, c2w, (fx, fy, cx, cy) in zip(images, c2ws, focals):
        h, w = im.shape[:2]
        o, d = _rays_fxfy(c2w, h, w, fx, fy, cx, cy)
        views.append(View(o, d, im.reshape(-1, 3), h, w))
    return views


def _rays_fxfy(c2w: Tensor, h: int, w: int, fx: float, fy: float, cx: float, cy: float
               ) -> tuple[Tensor, Tensor]:
    """pinhole_rays with separate focal lengths (fx, fy)."""
    j, i = torch.meshgrid(torch.arange(h, dtype=torch.float32) + 0.5,
                          torch.arange(w, dtype=torch.float32) + 0.5, indexing="ij")
    cam = torch.stack([(i - cx) / fx, -(j - cy) / fy, -torch.ones_like(i)], -1).reshape(-1, 3)
    dirs = cam @ c2w[:3, :3].T  # [H*W, 3]
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return c2w[:3, 3].expand_as(dirs).contiguous(), dirs


def _read_json(path: Path, tree: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; expected scene folder layout:\n{tree}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err


def _frames(meta: dict, path: Path, keys: tuple[str, ...]) -> list[dict]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise ValueError(f"{path}: missing or empty 'frames' list")
    for i, fr in enumerate(frames):
        missing = [k for k in keys if k not in fr]
        if missing:
            raise ValueError(f"{path}: frame {i} lacks {missing}")
        if np.asarray(fr["transform_matrix"]).shape != (4, 4):
            raise ValueError(f"{path}: frame {i} transform_matrix is not 4x4")
    return frames


BLENDER_TREE = """<root>/transforms_train.json  transforms_test.json  [transforms_val.json]
<root>/train/r_0.png ...  test/r_0.png ...   (RGBA, paths as in each frame's file_path)"""


def load_blender(root: str | Path, downscale: int = 1, white_bkgd: bool = True,
                 near: float = 2.0, far: float = 6.0, max_test: int = 0) -> SceneData:
    """NeRF-Blender synthetic scene (transforms_{train,test}.json, camera_angle_x)."""
    root = Path(root)
    splits = {}
    for split in ("train", "test"):
        path = root / f"transforms_{split}.json"
        meta = _read_json(path, BLENDER_TREE)
        if "camera_angle_x" not in meta:
            raise ValueError(f"{path}: missing 'camera_angle_x' (horizontal field of view)")
        frames = _frames(meta, path, ("file_path", "transform_matrix"))
        if split == "test" and max_test:
            frames = frames[:max_test]
        names = [fr["file_path"] + ("" if fr["file_path"].endswith(".png") else ".png")
                 for fr in frames]
        images = [_load_image(root / n, downscale, white_bkgd) for n in names]
        w = images[0].shape[1]
        f = 0.5 * w / math.tan(0.5 * float(meta["camera_angle_x"]))
        h = images[0].shape[0]
        c2ws = [torch.tensor(fr["transform_matrix"], dtype=torch.float32) for fr in frames]
        splits[split] = _stack_views(images, c2ws, [(f, f, w / 2, h / 2)] * len(frames), names)
    train = splits["train"]
    return SceneData(torch.cat([v.rays_o for v in train]), torch.cat([v.rays_d for v in train]),
                     torch.cat([v.rgb for v in train]), splits["test"], near, far,
                     torch.tensor([[-1.5] * 3, [1.5] * 3]), white_bkgd=white_bkgd)


NERFSTUDIO_TREE = """<root>/transforms.json   (fl_x, fl_y, cx, cy, w, h at top level or per frame;
                      frames[i].file_path, frames[i].transform_matrix, OpenGL c2w)
<root>/images/...     (paths relative to <root>)"""


def load_nerfstudio(root: str | Path, downscale: int = 1, white_bkgd: bool = False,
                    near: float = 0.05, far: float = 4.0, hold_every: int = 8) -> SceneData:
    """nerfstudio-format scene; cameras centred and scaled into [-1, 1]^3 (every 8th view held out)."""
    root = Path(root)
    path = root / "transforms.json"
    meta = _read_json(path, NERFSTUDIO_TREE)
    frames = _frames(meta, path, ("file_path", "transform_matrix"))
    intr = []
    for i, fr in enumerate(frames):
        vals = {k: fr.get(k, meta.get(k)) for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")}
        missing = [k for k in ("fl_x", "cx", "cy") if vals[k] is None]
        if missing:
            raise ValueError(f"{path}: frame {i} has no intrinsics {missing} (top level or frame)")
        fy = vals["fl_y"] if vals["fl_y"] is not None else vals["fl_x"]
        intr.append(tuple(float(v) / downscale for v in (vals["fl_x"], fy, vals["cx"], vals["cy"])))
    names = [fr["file_path"] for fr in frames]
    images = [_load_image(root / n, downscale, white_bkgd) for n in names]
    c2ws = torch.stack([torch.tensor(fr["transform_matrix"], dtype=torch.float32)
                        for fr in frames])
    centre = c2ws[:, :3, 3].mean(0)
    c2ws[:, :3, 3] -= centre
    c2ws[:, :3, 3] /= c2ws[:, :3, 3].abs().max().clamp_min(1e-8)  # nerfstudio-style auto scale
    views = _stack_views(images, list(c2ws), intr, names)
    test_idx = set(range(0, len(views), hold_every))
    train = [v for i, v in enumerate(views) if i not in test_idx] or views
    test = [v for i, v in enumerate(views) if i in test_idx]
    return SceneData(torch.cat([v.rays_o for v in train]), torch.cat([v.rays_d for v in train]),
                     torch.cat([v.rgb for v in train]), test, near, far,
                     torch.tensor([[-2.0] * 3, [2.0] * 3]), white_bkgd=white_bkgd)


LLFF_TREE = """<root>/poses_bounds.npy   ([V, 17]: 3x5 pose-hwf rows + near/far bounds per view)
<root>/images/*.JPG|png     (or images_<downscale>/, sorted names, V files)"""


def load_llff(root: str | Path, downscale: int = 1, hold_every: int = 8) -> SceneData:
    """LLFF forward-facing scene (poses_bounds.npy), without NDC (rays sampled in metric space).

    Follows the original loader's conventions: [down, right, back] -> [right, up, back] columns,
    bounds rescaled so that the closest bound is 1 / 0.75, every 8th view held out.
    """
    root = Path(root)
    path = root / "poses_bounds.npy"
    if not path.is_file():
        raise FileNotFoundError(f"missing {path}; expected scene folder layout:\n{LLFF_TREE}")
    arr = np.load(path)
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise ValueError(f"{path}: expected shape [V, 17], got {arr.shape}")
    poses = torch.from_numpy(arr[:, :15].reshape(-1, 3, 5)).float()  # [V, 3, 5]
    bounds = torch.from_numpy(arr[:, 15:]).float()  # [V, 2]
    img_dir = root / (f"images_{downscale}" if downscale > 1 else "images")
    if not img_dir.is_dir():
        img_dir = root / "images"
    files = sorted(p for p in img_dir.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) != len(poses):
        raise ValueError(f"{img_dir}: {len(files)} images but {len(poses)} poses in {path}")
    scale_to_dir = downscale if img_dir.name == "images" else 1
    images = [_load_image(p, scale_to_dir, white_bkgd=False) for p in files]
    rot = torch.cat([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], dim=2)  # [V, 3, 4]
    sc = 1.0 / (bounds.min() * 0.75)
    rot[:, :, 3] *= sc
    bounds = bounds * sc
    c2ws = [torch.cat([r, torch.tensor([[0.0, 0.0, 0.0, 1.0]])]) for r in rot]
    h, w = images[0].shape[:2]
    focal = float(poses[0, 2, 4]) * w / float(poses[0, 1, 4])  # hwf column at full resolution
    views = _stack_views(images, c2ws, [(focal, focal, w / 2, h / 2)] * len(c2ws),
                         [p.name for p in files])
    test_idx = set(range(0, len(views), hold_every))
    train = [v for i, v in enumerate(views) if i not in test_idx]
    test = [v for i, v in enumerate(views) if i in test_idx]
    near, far = float(bounds.min()) * 0.9, float(bounds.max())
    extent = float(rot[:, :, 3].abs().max()) + far
    return SceneData(torch.cat([v.rays_o for v in train]), torch.cat([v.rays_d for v in train]),
                     torch.cat([v.rgb for v in train]), test, near, far,
                     torch.tensor([[-extent] * 3, [extent] * 3]), white_bkgd=False)


def build_scene_data(kind: str, root: str, k: float, *, image_size: int = 32, num_train: int = 24,
                     num_test: int = 4, downscale: int = 1, white_bkgd: bool = True,
                     near: float = 0.0, far: float = 0.0, seed: int = 0) -> SceneData:
    """Dispatch on `kind`; near/far (unit scale, 0 = default) then scale by k."""
    if not (k > 0 and math.isfinite(k)):
        raise ValueError(f"scene scale factor k must be a finite number > 0, got {k}")
    if kind == "synthetic":  # ground truth rendered exactly at scale k (identical by invariance)
        return make_synthetic(image_size, num_train, num_test, k=k, seed=seed,
                              white_bkgd=white_bkgd)
    if not root:
        raise ValueError(f"data_kind={kind!r} needs data_root (see README for the folder tree)")
    if kind == "blender":
        data = load_blender(root, downscale, white_bkgd)
    elif kind == "nerfstudio":
        data = load_nerfstudio(root, downscale, white_bkgd)
    elif kind == "llff":
        data = load_llff(root, downscale)
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    data = replace(data, near=near or data.near, far=far or data.far)
    return scale_scene(data, k)
