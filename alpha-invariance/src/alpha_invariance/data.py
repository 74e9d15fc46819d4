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

from .runtime import ConfigError, DataError, MissingPathError
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


def crop_view(view: View, size: int) -> View:
    """The central size x size pixels of a view (size 0 or >= the image: the view itself)."""
    if size <= 0 or (size >= view.height and size >= view.width):
        return view
    h, w = min(size, view.height), min(size, view.width)
    top, left = (view.height - h) // 2, (view.width - w) // 2

    def cut(x: Tensor | None) -> Tensor | None:
        if x is None:
            return None
        grid = x.view(view.height, view.width, *x.shape[1:])  # [H, W, ...]
        return grid[top:top + h, left:left + w].reshape(h * w, *x.shape[1:])

    return View(cut(view.rays_o), cut(view.rays_d), cut(view.rgb), h, w, cut(view.depth))


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
        raise ConfigError(f"scene scale factor k must be a finite number > 0, got {k!r}",
                          "--data_scene_scale")
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
        raise ConfigError(f"scene scale factor k must be > 0, got {k}", "--data_scene_scale")
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


def write_nerfstudio_capture(root: str | Path, image_size: int = 16, num_views: int = 8,
                             k: float = 1.0, seed: int = 0) -> Path:
    """Write the analytic sphere scene at scale k as a nerfstudio capture (transforms.json +
    images/*.png, OpenGL camera-to-world, white background), for ns-train and its tests.

    Returns the capture folder. Every 8th frame is what `load_nerfstudio` holds out.
    """
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    data = make_synthetic(image_size, num_train=num_views, num_test=1, k=k, seed=seed)
    focal = 0.5 * image_size / math.tan(math.radians(20.0))
    frames = []
    for i, c2w in enumerate(camera_rig(num_views, 3.0, seed=seed)):
        c2w = c2w.clone()
        c2w[:3, 3] *= k
        rgb = data.rgb[i * image_size ** 2:(i + 1) * image_size ** 2]  # [H*W, 3]
        img = (rgb.view(image_size, image_size, 3).clamp(0, 1).numpy() * 255).round()
        name = f"images/frame_{i:05d}.png"
        Image.fromarray(img.astype(np.uint8)).save(root / name)
        frames.append({"file_path": name, "transform_matrix": c2w.tolist()})
    meta = {"camera_model": "OPENCV", "fl_x": focal, "fl_y": focal, "cx": image_size / 2,
            "cy": image_size / 2, "w": image_size, "h": image_size, "frames": frames}
    (root / "transforms.json").write_text(json.dumps(meta, indent=1))
    return root


def write_blender_capture(root: str | Path, image_size: int = 800, num_train: int = 2,
                          num_test: int = 1, seed: int = 0) -> Path:
    """Write the analytic sphere scene (k = 1, white background) in the NeRF-Blender layout
    (transforms_{train,test}.json + RGB PNGs, camera_angle_x) at `image_size` pixels, e.g. the
    paper's 800 x 800, so that paper-preset runs read it through `load_blender` (smoke.py)."""
    from PIL import Image

    root = Path(root)
    data = make_synthetic(image_size, num_train, num_test, seed=seed)
    train = [View(data.rays_o[i * image_size ** 2:(i + 1) * image_size ** 2], data.rays_d[:1],
                  data.rgb[i * image_size ** 2:(i + 1) * image_size ** 2], image_size,
                  image_size) for i in range(num_train)]
    fov = 2 * math.radians(20.0)  # make_synthetic's 40-degree field of view
    rigs = {"train": camera_rig(num_train, 3.0, seed=seed), "test": camera_rig(num_test, 3.0,
                                                                              seed=seed + 1000)}
    for split, views in (("train", train), ("test", data.test_views)):
        (root / split).mkdir(parents=True, exist_ok=True)
        frames = []
        for i, (view, c2w) in enumerate(zip(views, rigs[split])):
            img = view.rgb.view(image_size, image_size, 3).clamp(0, 1).numpy() * 255
            Image.fromarray(img.round().astype(np.uint8)).save(root / split / f"r_{i}.png")
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()})
        (root / f"transforms_{split}.json").write_text(
            json.dumps({"camera_angle_x": fov, "frames": frames}, indent=1))
    return root


# ----------------------------------------------------------------------------- real data


def _load_image(path: Path, downscale: int, white_bkgd: bool) -> Tensor:
    """RGB(A) image -> [H, W, 3] float in [0, 1]; RGBA composited onto white or black."""
    from PIL import Image

    if not path.is_file():
        raise MissingPathError(f"image file not found: {path}",
                               "file_path entries are relative to the scene folder")
    try:
        with Image.open(path) as img:
            if downscale > 1:
                img = img.resize((max(img.width // downscale, 1), max(img.height // downscale, 1)),
                                 Image.LANCZOS)
            rgb = np.asarray(img.convert("RGBA" if img.mode in ("RGBA", "LA") else "RGB"),
                             dtype=np.float32)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(f"cannot read image {path}: {type(err).__name__}",
                        "re-export it as PNG or JPEG") from None
    arr = torch.from_numpy(rgb / 255.0)
    if arr.shape[-1] == 4:
        bkgd = 1.0 if white_bkgd else 0.0
        arr = arr[..., :3] * arr[..., 3:] + bkgd * (1.0 - arr[..., 3:])
    return arr


def _stack_views(images: list[Tensor], c2ws: list[Tensor], focals: list[tuple], names: list[str]
                 ) -> list[View]:
    sizes = {tuple(im.shape[:2]) for im in images}
    if len(sizes) > 1:
        detail = ", ".join(f"{n}: {tuple(im.shape[:2])}" for n, im in zip(names, images))
        raise DataError(f"images of inconsistent size {sorted(sizes)}", detail)
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
        raise MissingPathError(f"missing {path}", f"expected scene folder layout: {tree}")
    try:
        meta = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(f"{path} is not valid JSON: {err}", "check the file") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: expected a JSON object at top level, got {type(meta).__name__}")
    return meta


# Values beyond this cannot be camera parameters of a real capture and overflow float32 later
# (found by the fuzz tests: a corrupted header turned poses into 1e300 and near/far into NaN).
MAX_ABS_VALUE = 1e12


def _number(value, what: str, path: Path) -> float:
    """A finite float from a JSON value, or DataError naming the key."""
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not abs(value) <= MAX_ABS_VALUE):  # also rejects NaN and inf
        raise DataError(f"{path}: {what} must be a finite number, got {value!r}")
    return float(value)


def _matrix(value, what: str, path: Path) -> Tensor:
    """A finite [4, 4] camera-to-world matrix from a JSON value."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        arr = np.zeros(0)
    if arr.shape != (4, 4) or not (np.abs(arr) <= MAX_ABS_VALUE).all():
        raise DataError(f"{path}: {what} is not a finite 4x4 matrix")
    if abs(np.linalg.det(arr[:3, :3])) < 1e-9:
        raise DataError(f"{path}: {what} has a singular 3x3 rotation part")
    return torch.from_numpy(arr).float()


def _frames(meta: dict, path: Path, keys: tuple[str, ...]) -> list[dict]:
    frames = meta.get("frames")
    if not isinstance(frames, list) or not frames:
        raise DataError(f"{path}: missing or empty 'frames' list")
    for i, fr in enumerate(frames):
        if not isinstance(fr, dict):
            raise DataError(f"{path}: frame {i} is not a JSON object")
        missing = [k for k in keys if k not in fr]
        if missing:
            raise DataError(f"{path}: frame {i} lacks {missing}")
        if not isinstance(fr["file_path"], str) or not fr["file_path"]:
            raise DataError(f"{path}: frame {i} file_path must be a non-empty string")
        _matrix(fr["transform_matrix"], f"frame {i} transform_matrix", path)
    return frames


BLENDER_TREE = ("<root>/transforms_train.json, transforms_test.json, <root>/train/r_0.png ..., "
                "test/r_0.png ... (RGBA, paths as in each frame's file_path)")


def load_blender(root: str | Path, downscale: int = 1, white_bkgd: bool = True,
                 near: float = 2.0, far: float = 6.0, max_test: int = 0) -> SceneData:
    """NeRF-Blender synthetic scene (transforms_{train,test}.json, camera_angle_x)."""
    root = Path(root)
    splits = {}
    for split in ("train", "test"):
        path = root / f"transforms_{split}.json"
        meta = _read_json(path, BLENDER_TREE)
        if "camera_angle_x" not in meta:
            raise DataError(f"{path}: missing 'camera_angle_x' (horizontal field of view)")
        fov = _number(meta["camera_angle_x"], "camera_angle_x", path)
        if not 0 < fov < math.pi:
            raise DataError(f"{path}: camera_angle_x must lie in (0, pi) radians, got {fov}")
        frames = _frames(meta, path, ("file_path", "transform_matrix"))
        if split == "test" and max_test:
            frames = frames[:max_test]
        names = [fr["file_path"] + ("" if fr["file_path"].endswith(".png") else ".png")
                 for fr in frames]
        images = [_load_image(root / n, downscale, white_bkgd) for n in names]
        w = images[0].shape[1]
        f = 0.5 * w / math.tan(0.5 * fov)
        h = images[0].shape[0]
        c2ws = [_matrix(fr["transform_matrix"], "transform_matrix", path) for fr in frames]
        splits[split] = _stack_views(images, c2ws, [(f, f, w / 2, h / 2)] * len(frames), names)
    train = splits["train"]
    return SceneData(torch.cat([v.rays_o for v in train]), torch.cat([v.rays_d for v in train]),
                     torch.cat([v.rgb for v in train]), splits["test"], near, far,
                     torch.tensor([[-1.5] * 3, [1.5] * 3]), white_bkgd=white_bkgd)


NERFSTUDIO_TREE = ("<root>/transforms.json (fl_x, fl_y, cx, cy, w, h at top level or per frame; "
                   "frames[i].file_path, frames[i].transform_matrix, OpenGL c2w), "
                   "<root>/images/... (paths relative to <root>)")


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
            raise DataError(f"{path}: frame {i} has no intrinsics {missing}",
                            "give them at top level or per frame")
        fy = vals["fl_y"] if vals["fl_y"] is not None else vals["fl_x"]
        nums = [_number(v, f"frame {i} {k}", path)
                for k, v in zip(("fl_x", "fl_y", "cx", "cy"), (vals["fl_x"], fy, vals["cx"],
                                                                vals["cy"]))]
        if nums[0] <= 0 or nums[1] <= 0:
            raise DataError(f"{path}: frame {i} focal lengths must be > 0, got {nums[:2]}")
        intr.append(tuple(v / downscale for v in nums))
    names = [fr["file_path"] for fr in frames]
    images = [_load_image(root / n, downscale, white_bkgd) for n in names]
    c2ws = torch.stack([_matrix(fr["transform_matrix"], "transform_matrix", path)
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


LLFF_TREE = ("<root>/poses_bounds.npy ([V, 17]: 3x5 pose-hwf rows + near/far bounds per view), "
             "<root>/images/*.JPG|png (or images_<downscale>/, sorted names, V files)")


def load_llff(root: str | Path, downscale: int = 1, hold_every: int = 8) -> SceneData:
    """LLFF forward-facing scene (poses_bounds.npy), without NDC (rays sampled in metric space).

    Follows the original loader's conventions: [down, right, back] -> [right, up, back] columns,
    bounds rescaled so that the closest bound is 1 / 0.75, every 8th view held out.
    """
    root = Path(root)
    path = root / "poses_bounds.npy"
    if not path.is_file():
        raise MissingPathError(f"missing {path}", f"expected scene folder layout: {LLFF_TREE}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{path} is not a readable .npy array: {type(err).__name__}",
                        "write it with numpy.save") from None
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.shape[1] != 17 or not len(arr):
        raise DataError(f"{path}: expected shape [V, 17], got {getattr(arr, 'shape', None)}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise DataError(f"{path}: poses and bounds must be real numbers, got {arr.dtype}")
    arr = arr.astype(np.float64)
    if not (np.abs(arr) <= MAX_ABS_VALUE).all():
        raise DataError(f"{path}: poses and bounds must be finite and below {MAX_ABS_VALUE:g}")
    if (arr[:, 15:] <= 0).any() or (arr[:, 14] <= 0).any() or (arr[:, 9] <= 0).any():
        raise DataError(f"{path}: near/far bounds, image width and focal length must be > 0")
    poses = torch.from_numpy(arr[:, :15].reshape(-1, 3, 5)).float()  # [V, 3, 5]
    bounds = torch.from_numpy(arr[:, 15:]).float()  # [V, 2]
    img_dir = root / (f"images_{downscale}" if downscale > 1 else "images")
    if not img_dir.is_dir():
        img_dir = root / "images"
    files = sorted(p for p in img_dir.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if len(files) != len(poses):
        raise DataError(f"{img_dir}: {len(files)} images but {len(poses)} poses in {path}")
    scale_to_dir = downscale if img_dir.name == "images" else 1
    images = [_load_image(p, scale_to_dir, white_bkgd=False) for p in files]
    rot = torch.cat([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:4]], dim=2)  # [V, 3, 4]
    sc = 1.0 / (bounds.min() * 0.75)
    rot[:, :, 3] *= sc
    bounds = bounds * sc
    if not (torch.isfinite(rot).all() and torch.isfinite(bounds).all()):  # e.g. near ~ 1e-300
        raise DataError(f"{path}: near/far bounds too small for the camera positions",
                        "bounds are rescaled so that the closest is 1 / 0.75")
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
        raise ConfigError(f"scene scale factor k must be a finite number > 0, got {k}",
                          "--data_scene_scale")
    if kind == "synthetic":  # ground truth rendered exactly at scale k (identical by invariance)
        return make_synthetic(image_size, num_train, num_test, k=k, seed=seed,
                              white_bkgd=white_bkgd)
    if not root:
        raise ConfigError(f"data_kind={kind!r} needs data_root", "README: Data layouts")
    if not Path(root).is_dir():
        raise MissingPathError(f"data_root not found: {root}",
                               f"data_kind={kind!r}; README: Data layouts")
    if kind == "blender":
        data = load_blender(root, downscale, white_bkgd)
    elif kind == "nerfstudio":
        data = load_nerfstudio(root, downscale, white_bkgd)
    elif kind == "llff":
        data = load_llff(root, downscale)
    else:
        raise ConfigError(f"unknown data kind {kind!r}", "synthetic, blender, nerfstudio or llff")
    data = replace(data, near=near or data.near, far=far or data.far)
    return scale_scene(data, k)
