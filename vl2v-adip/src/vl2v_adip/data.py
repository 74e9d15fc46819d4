"""Multi-domain image data: DomainBed folder datasets, a synthetic multi-domain shape set, the
DomainBed leave-one-domain-out split and a step-indexed (hence resumable) batch sampler.

Shapes: `B` batch, `S` image side, images are float [3, S, S] in [0, 1] (each model applies its own
normalisation: ImageNet statistics for the student, CLIP statistics for the teacher).

DomainBed layout (Gulrajani & Lopez-Paz; folder names as in val-iisc/VL2V-ADiP
`domainbed/datasets/datasets.py`): `<data_root>/<folder>/<domain>/<class>/<image>`.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .runtime import DataError, MissingPathError

# --------------------------------------------------------------------------- DomainBed layout
# dataset name -> (folder under data_root, domain folders in DomainBed's sorted order)
DOMAINBED: dict[str, tuple[str, tuple[str, ...]]] = {
    "PACS": ("PACS", ("art_painting", "cartoon", "photo", "sketch")),
    "VLCS": ("VLCS", ("Caltech101", "LabelMe", "SUN09", "VOC2007")),
    "OfficeHome": ("office_home", ("Art", "Clipart", "Product", "Real World")),
    "TerraIncognita": ("terra_incognita", ("location_100", "location_38", "location_43",
                                           "location_46")),
    "DomainNet": ("domain_net", ("clipart", "infograph", "painting", "quickdraw", "real",
                                 "sketch")),
}
# torchvision ImageFolder's IMG_EXTENSIONS (the official loader), so the file list and hence the
# seeded in/out split are the same as the official code's
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# --------------------------------------------------------------------------- synthetic set
SYNTH_CLASSES = ("circle", "square", "triangle", "cross", "star", "crescent")
# domains of the DG benchmark (leave-one-out over these) ...
BENCH_DOMAINS = ("photo", "sketch", "cartoon", "texture")
# ... and extra domains only used to pre-train the stand-in teacher / student ("web data")
EXTRA_DOMAINS = ("inverted", "dotted", "outline", "blurred", "mosaic", "noisy")


@dataclass
class MultiDomainData:
    """Per-domain datasets that share one class list.

    Attributes:
        name: data set name.
        domains: domain names, index = DomainBed environment id.
        classes: class names (text prompts are built from them).
        envs: one Dataset per domain; item = (image [3, S, S] float in [0, 1], label int).
    """

    name: str
    domains: list[str]
    classes: list[str]
    envs: list[Dataset]


class TensorDomain(Dataset):
    """A domain held in memory: images [N, 3, S, S] in [0, 1], labels [N]."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        assert images.ndim == 4 and images.shape[1] == 3, images.shape
        assert len(images) == len(labels), (images.shape, labels.shape)
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


class FolderDomain(Dataset):
    """One DomainBed domain folder: `<domain>/<class>/<image>`, decoded lazily with PIL."""

    def __init__(self, files: list[Path], labels: list[int], image_size: int,
                 augment: bool = False) -> None:
        from torchvision import transforms as T

        self.files, self.labels = files, labels
        self.eval_tf = T.Compose([T.Resize((image_size, image_size)), T.ToTensor()])
        # DomainBed training augmentation (domainbed/datasets/transforms.py `aug`), without the
        # normalisation (done by each model).
        self.train_tf = T.Compose([
            T.RandomResizedCrop(image_size, scale=(0.7, 1.0)), T.RandomHorizontalFlip(),
            T.ColorJitter(0.3, 0.3, 0.3, 0.3), T.RandomGrayscale(p=0.1), T.ToTensor()])
        self.augment = augment

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        tf = self.train_tf if self.augment else self.eval_tf
        return tf(read_rgb(self.files[i])), self.labels[i]


_WARNED: set[str] = set()


def read_rgb(path: Path):
    """Decode an image as RGB (PIL). A truncated file is decoded as far as it goes, as the
    official loader does (`ImageFile.LOAD_TRUNCATED_IMAGES = True`), with one warning line per
    file; a file that is not an image raises DataError naming it."""
    from PIL import Image, ImageFile, UnidentifiedImageError

    def decode():
        with Image.open(path) as img:
            return img.convert("RGB")

    try:
        return decode()
    except (UnidentifiedImageError, ValueError, SyntaxError, EOFError) as err:
        raise DataError(f"image failed to decode: {path} ({type(err).__name__})",
                        "remove or replace the file") from None
    except OSError as err:
        if not path.is_file():
            raise MissingPathError(f"image file disappeared: {path}", "re-index the dataset") \
                from None
        if "truncated" not in str(err):
            raise DataError(f"image failed to decode: {path} ({type(err).__name__})",
                            "remove or replace the file") from None
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        img = decode()
    except Exception as err:  # noqa: BLE001 - any failure here means an unusable file
        raise DataError(f"image failed to decode: {path} ({type(err).__name__})",
                        "remove or replace the file") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    if str(path) not in _WARNED:
        _WARNED.add(str(path))
        print(f"warning: truncated image {path}; decoded the part present (as the official "
              "loader does)", file=sys.stderr)
    return img


def _image_files(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in torchvision ImageFolder's order (sorted
    os.walk, sorted file names)."""
    import os

    found = []
    for root, _, names in sorted(os.walk(folder, followlinks=True)):
        found += [Path(root) / n for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES)]
    return found


def load_domainbed(data_root: str | Path, name: str, image_size: int = 224) -> MultiDomainData:
    """Index a DomainBed dataset folder; every domain must hold the same class folders.

    Raises:
        MissingPathError: the dataset folder or a domain folder is missing.
        DataError: unknown dataset name, no classes, an empty class folder or class sets that
            differ across domains.
    """
    if name not in DOMAINBED:
        raise DataError(f"unknown DomainBed dataset {name!r}", f"one of {sorted(DOMAINBED)}")
    folder, domains = DOMAINBED[name]
    root = Path(data_root) / folder
    tree = (f"expected {root}/<domain>/<class>/<image>, domains {list(domains)} "
            f"(DomainBed layout, see README)")
    if not root.is_dir():
        raise MissingPathError(f"dataset folder not found: {root}", tree)
    missing = [d for d in domains if not (root / d).is_dir()]
    if missing:
        raise MissingPathError(f"missing domain folder(s) {missing} in {root}", tree)
    class_sets = {d: sorted(p.name for p in (root / d).iterdir() if p.is_dir()) for d in domains}
    classes = class_sets[domains[0]]
    for d, cs in class_sets.items():
        if cs != classes:
            diff = sorted(set(cs) ^ set(classes))
            raise DataError(f"inconsistent class folders: domain {d!r} differs from "
                            f"{domains[0]!r} in {diff}", "every domain needs the same classes")
    if not classes:
        raise DataError(f"no class folders in {root / domains[0]}", tree)
    envs = []
    for d in domains:
        files, labels = [], []
        for k, c in enumerate(classes):
            found = _image_files(root / d / c)
            if not found:
                raise DataError(f"class folder {root / d / c} holds no images "
                                f"({' '.join(IMAGE_SUFFIXES)})", tree)
            files += found
            labels += [k] * len(found)
        envs.append(FolderDomain(files, labels, image_size))
    return MultiDomainData(name, list(domains), classes, envs)


# --------------------------------------------------------------------------- synthetic shapes
def _shape_mask(cls: int, u: np.ndarray, v: np.ndarray, radius: float) -> np.ndarray:
    """Boolean mask of class `cls` on centred, rotated coordinates u, v ([S, S])."""
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    if cls == 0:  # circle
        return r < radius
    if cls == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) < 0.8 * radius
    if cls == 2:  # equilateral triangle: inside three half-planes
        normals = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, 7 * math.pi / 6,
                                                       11 * math.pi / 6)]
        return np.all([u * nx + v * ny < 0.5 * radius for nx, ny in normals], axis=0)
    if cls == 3:  # cross
        w = 0.3 * radius
        return ((np.abs(u) < w) & (np.abs(v) < radius)) | ((np.abs(v) < w) & (np.abs(u) < radius))
    if cls == 4:  # five-pointed star (polar profile)
        return r < radius * (0.45 + 0.55 * ((np.cos(5 * theta) + 1) / 2) ** 1.5)
    if cls == 5:  # crescent: disc minus a shifted disc
        return (r < radius) & (np.hypot(u - 0.45 * radius, v) > 0.8 * radius)
    raise ValueError(cls)


def _edges(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boundary pixels of a mask (mask minus its erosion)."""
    eroded = mask.copy()
    for _ in range(width):
        e = eroded.copy()
        e[1:] &= eroded[:-1]
        e[:-1] &= eroded[1:]
        e[:, 1:] &= eroded[:, :-1]
        e[:, :-1] &= eroded[:, 1:]
        eroded = e
    return mask & ~eroded


def _blur(img: np.ndarray, passes: int = 2) -> np.ndarray:
    """Cheap box blur of [3, S, S] (edge padded)."""
    for _ in range(passes):
        p = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
        img = (p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:]
               + p[:, 1:-1, 1:-1]) / 5
    return img


def _style(domain: str, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Render a boolean mask [S, S] in a domain's style -> RGB [3, S, S] in [0, 1]."""
    s = mask.shape[0]
    m = mask[None].astype(np.float32)
    yy, xx = np.mgrid[0:s, 0:s] / max(s - 1, 1)
    col = lambda: rng.uniform(0, 1, (3, 1, 1))
    if domain == "photo":  # smooth shading + gradient background + sensor noise
        g = rng.uniform(-1, 1, 2)
        bg = col() * 0.6 + 0.2 + 0.25 * (g[0] * xx + g[1] * yy)[None]
        lx, ly = rng.uniform(0, 1, 2)
        shade = 1.1 - 0.8 * np.hypot(xx - lx, yy - ly)[None]
        img = bg * (1 - m) + col() * shade * m + rng.normal(0, 0.04, (3, s, s))
    elif domain == "sketch":  # dark pencil edges on paper
        e = _edges(mask, width=int(rng.integers(1, 3)))[None]
        img = np.full((3, s, s), rng.uniform(0.85, 1.0)) - e * rng.uniform(0.6, 0.9)
        img = img + rng.normal(0, 0.03, (1, s, s))
    elif domain == "cartoon":  # flat saturated fills + black outline
        img = col() * (1 - m) + col() * m
        img = np.where(_edges(mask, 1)[None], 0.0, img)
    elif domain == "texture":  # shape defined by texture, not colour
        stripes = (np.sin((xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1)) * 40) > 0)[None]
        fg = np.where(stripes, col(), col())
        bg = rng.uniform(0, 1, (3, s, s))
        img = bg * (1 - m) + fg * m
    elif domain == "inverted":
        img = np.full((3, s, s), 0.05) + m * rng.uniform(0.7, 1.0)
    elif domain == "dotted":
        dots = ((np.arange(s)[:, None] % 3 == 0) & (np.arange(s)[None] % 3 == 0))[None]
        img = col() * 0.3 + 0.6 + (m * dots) * (col() - 0.9)
    elif domain == "outline":
        e = _edges(mask, width=2)[None]
        img = col() * 0.25 * np.ones((3, s, s)) + e * col()
    elif domain == "blurred":
        img = _blur(col() * 0.4 + 0.3 + m * (col() - 0.5) * 0.8, passes=3)
    elif domain == "mosaic":
        img = col() * (1 - m) + col() * m
        k = 4
        small = img[:, ::k, ::k]
        img = np.repeat(np.repeat(small, k, axis=1), k, axis=2)[:, :s, :s]
    elif domain == "noisy":  # flat shape on a pixel-noise background
        img = rng.uniform(0, 1, (3, s, s)) * (1 - m) + col() * m
    else:
        raise DataError(f"unknown synthetic domain {domain!r}", "valid: "
                         f"{BENCH_DOMAINS + EXTRA_DOMAINS}")
    return np.clip(img, 0, 1).astype(np.float32)


def render_shape(cls: int, domain: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One synthetic image of class `cls` in `domain`: random position, size and rotation."""
    grid = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    x, y = np.meshgrid(grid, -grid)  # y up
    cx, cy = rng.uniform(-0.25, 0.25, 2)
    angle = rng.uniform(-0.35, 0.35)  # small rotations keep square vs diamond unambiguous
    u = (x - cx) * math.cos(angle) + (y - cy) * math.sin(angle)
    v = -(x - cx) * math.sin(angle) + (y - cy) * math.cos(angle)
    mask = _shape_mask(cls, u, v, rng.uniform(0.45, 0.7))
    return _style(domain, mask, rng)


def make_synthetic(domains: tuple[str, ...] | list[str], per_domain: int, size: int,
                   seed: int, name: str = "synthetic") -> MultiDomainData:
    """Balanced synthetic shapes: `per_domain` images per domain, classes SYNTH_CLASSES."""
    envs = []
    for d_idx, d in enumerate(domains):
        rng = np.random.default_rng([seed, d_idx, sum(map(ord, d))])
        labels = np.arange(per_domain) % len(SYNTH_CLASSES)
        images = np.stack([render_shape(int(c), d, size, rng) for c in labels])
        envs.append(TensorDomain(torch.from_numpy(images), torch.from_numpy(labels).long()))
    return MultiDomainData(name, list(domains), list(SYNTH_CLASSES), envs)


# --------------------------------------------------------------------------- splits + batches
@dataclass(frozen=True)
class Split:
    """Leave-one-domain-out split: lists of (env index, sample indices [N])."""

    train: list[tuple[int, np.ndarray]]  # training domains, "in" part
    val: list[tuple[int, np.ndarray]]  # training domains, "out" part (model selection)
    test: tuple[int, np.ndarray]  # the held-out domain, its "in" part (OOD accuracy)


def seed_hash(*args) -> int:
    """Integer seed from the arguments' repr (DomainBed `misc.seed_hash`: md5, mod 2^31)."""
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def domainbed_out_in(n: int, holdout_fraction: float, trial_seed: int, env: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(out, in) indices of one domain: a legacy-numpy shuffle of 0..n-1 seeded by
    seed_hash(trial_seed, env); the first int(n * holdout_fraction) are "out" (DomainBed
    `split_dataset`, as the official `get_dataset` calls it)."""
    keys = list(range(n))
    np.random.RandomState(seed_hash(trial_seed, env)).shuffle(keys)
    n_out = int(n * holdout_fraction)
    return np.asarray(keys[:n_out], dtype=np.int64), np.asarray(keys[n_out:], dtype=np.int64)


def leave_one_domain_out(env_sizes: list[int], test_domain: int, holdout_fraction: float,
                         trial_seed: int) -> Split:
    """DomainBed split (official protocol): every domain is split out/in by the trial seed;
    training domains train on "in" and validate on "out"; the held-out domain is scored on its
    "in" part (the official `test_in`)."""
    if len(env_sizes) < 2:
        raise DataError("leave-one-domain-out needs at least 2 domains",
                        "check synth_domains / the dataset folder")
    if not 0 <= test_domain < len(env_sizes):
        raise DataError(f"test_domain={test_domain} out of range for {len(env_sizes)} domains",
                        f"use 0..{len(env_sizes) - 1}")
    train, val, test = [], [], None
    for e, n in enumerate(env_sizes):
        out_idx, in_idx = domainbed_out_in(n, holdout_fraction, trial_seed, e)
        if e == test_domain:
            test = (e, np.sort(in_idx))
            continue
        if len(in_idx) == 0 or len(out_idx) == 0:
            raise DataError(f"domain {e} has {n} images: too few for a {holdout_fraction} "
                            "validation split", "add images or change holdout_fraction")
        val.append((e, np.sort(out_idx)))
        train.append((e, np.sort(in_idx)))
    if len(test[1]) == 0:
        raise DataError(f"held-out domain {test_domain} has no images in its in-split",
                        "add images")
    return Split(train, val, test)


def sample_batch_indices(split_train: list[tuple[int, np.ndarray]], batch_size: int, step: int,
                         seed: int) -> list[tuple[int, np.ndarray]]:
    """Indices of step `step`'s batch: `batch_size` per training domain (DomainBed), drawn with
    a generator seeded by (seed, step), so a resumed run sees the same batches."""
    rng = np.random.default_rng([seed, step, 7])
    return [(e, idx[rng.integers(0, len(idx), batch_size)]) for e, idx in split_train]


def collate(data: MultiDomainData, picks: list[tuple[int, np.ndarray]],
            augment: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack the picked samples -> images [B, 3, S, S], labels [B], domain ids [B]."""
    xs, ys, ds = [], [], []
    for e, idx in picks:
        env = data.envs[e]
        if isinstance(env, FolderDomain):
            env.augment = augment
        for i in idx:
            x, y = env[int(i)]
            xs.append(x)
            ys.append(y)
            ds.append(e)
    return torch.stack(xs), torch.tensor(ys), torch.tensor(ds)


def iterate_eval(data: MultiDomainData, env: int, idx: np.ndarray, batch_size: int):
    """Yield (images, labels) over `idx` of domain `env` in order (no augmentation)."""
    for start in range(0, len(idx), batch_size):
        x, y, _ = collate(data, [(env, idx[start:start + batch_size])])
        yield x, y
