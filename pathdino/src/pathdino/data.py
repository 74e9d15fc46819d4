"""Datasets: patch folders, built-in IHC + synthetic sources, multi-crop pretraining, eval sets.

Shapes: a source image is a uint8 tensor [3, H, W]; `MultiCropDataset` items are lists of
float tensors [3, s, s]; eval sets are (images uint8 [N, S, S, 3] numpy, labels [N] int64).

Pretraining folder (`data_name="folder"`, official layout: TCGA/images_1024/*.jpg, images_512/...):
any tree of images under `data_root`; labels, if any, are ignored.
Labelled eval folder (`data_eval_root`): ImageFolder, `<root>/<class_name>/*.png|jpg|tif`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from . import synthetic
from .augment import MultiCropAugmentation
from .runtime import DataError, MissingPathError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


@dataclass
class FolderScan:
    files: list[Path]
    labels: list[int]
    class_names: list[str]
    skipped: list[Path] = field(default_factory=list)  # non-image files (reported, never silent)
    sizes: Counter = field(default_factory=Counter)  # (w, h) -> count

    def report(self) -> str:
        text = f"{len(self.files)} images"
        if self.class_names:
            text += f" in {len(self.class_names)} classes {self.class_names}"
        if len(self.sizes) > 1:
            text += f"; MIXED sizes {dict(self.sizes.most_common(5))} (resized/cropped per view)"
        if self.skipped:
            examples = ", ".join(p.name for p in self.skipped[:5])
            text += f"; skipped {len(self.skipped)} non-image files (e.g. {examples})"
        return text


def _read_rgb(path: Path) -> np.ndarray:
    """[H, W, 3] uint8, or DataError naming the file (PIL raises many types on broken files)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy
    except Exception as err:  # noqa: BLE001 - OSError, SyntaxError, ValueError, zlib.error ...
        raise DataError(f"cannot read image {path} ({type(err).__name__}: {err})",
                        "replace or remove the file") from None


def scan_image_folder(root: str | Path, labelled: bool) -> FolderScan:
    """List images under `root` (recursive). labelled: class = first-level sub-folder name."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        layout = "<root>/<class_name>/<image>.png" if labelled else "<root>/**/<image>.jpg"
        raise MissingPathError(f"image folder not found: {root}", f"expected {layout}")
    files, skipped = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        (files if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    class_names: list[str] = []
    labels: list[int] = []
    if labelled:
        files = [p for p in files if p.parent != root] or files
        class_names = sorted({p.relative_to(root).parts[0] for p in files if p.parent != root})
        if len(class_names) < 2:
            raise DataError(f"{root}: a labelled folder needs >= 2 class sub-folders, found "
                            f"{class_names}", "<root>/<class_name>/<image>")
        labels = [class_names.index(p.relative_to(root).parts[0]) for p in files]
    if not files:
        raise DataError(f"no images under {root}; {len(skipped)} other files found",
                        f"image suffixes {', '.join(sorted(IMAGE_SUFFIXES))}")
    sizes: Counter = Counter()
    for path in files:
        try:
            with Image.open(path) as im:
                sizes[im.size] += 1
        except Exception as err:  # noqa: BLE001 - see _read_rgb
            raise DataError(f"cannot read image {path} ({type(err).__name__}: {err})",
                            "replace or remove the file") from None
    scan = FolderScan(files, labels, class_names, skipped, sizes)
    print(f"[data] {root}: {scan.report()}")
    return scan


class SourceImages(Dataset):
    """Uint8 [3, H, W] source images from an array [N, H, W, 3] or a list of files."""

    def __init__(self, images: np.ndarray | None = None, files: list[Path] | None = None) -> None:
        assert (images is None) != (files is None), "give images or files"
        self.images, self.files = images, files

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        array = self.images[i] if self.images is not None else _read_rgb(self.files[i])
        return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)  # [3, H, W]


class MultiCropDataset(Dataset):
    """Item (index, seed) -> list of crops; the seed makes augmentation independent of workers
    and of where a run was resumed."""

    def __init__(self, sources: SourceImages, augment: MultiCropAugmentation) -> None:
        self.sources, self.augment = sources, augment

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, item: tuple[int, int]) -> list[torch.Tensor]:
        import random

        index, seed = item
        state = random.getstate()
        random.seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)  # CPU generator only
            crops = self.augment(self.sources[index])
        random.setstate(state)
        return crops


class StepBatchSampler(Sampler):
    """Batches for steps start..steps-1: batch s is a function of (seed, s) only."""

    def __init__(self, num_items: int, batch_size: int, seed: int, start: int, steps: int) -> None:
        self.num_items, self.batch_size = num_items, batch_size
        self.seed, self.start, self.steps = seed, start, steps

    def __len__(self) -> int:
        return max(0, self.steps - self.start)

    def __iter__(self):
        for step in range(self.start, self.steps):
            rng = np.random.default_rng([self.seed, step])
            replace = self.num_items < self.batch_size
            idx = rng.choice(self.num_items, self.batch_size, replace=replace)
            seeds = rng.integers(0, 2**31 - 1, self.batch_size)
            yield [(int(i), int(s)) for i, s in zip(idx, seeds)]


def pretraining_sources(data_name: str, data_root: str, num_train: int, source_size: int,
                        num_classes: int, bias_deg: float, seed: int) -> SourceImages:
    """Unlabelled pretraining images: a folder, or half IHC windows + half synthetic textures."""
    if data_name == "folder":
        return SourceImages(files=scan_image_folder(data_root, labelled=False).files)
    rng = np.random.default_rng([seed, 1])
    num_ihc = num_train // 2
    ihc = synthetic.ihc_windows(num_ihc, source_size, rng)
    per_class = int(np.ceil((num_train - num_ihc) / num_classes))
    textures, _ = synthetic.synthetic_patches(per_class, num_classes, source_size, bias_deg, rng)
    return SourceImages(images=np.concatenate([ihc, textures[: num_train - num_ihc]]))


def eval_sets(data_eval_root: str, input_size: int, per_class: int, num_classes: int,
              bias_deg: float, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Labelled sets for kNN / linear probe. Images are square with side >= input_size * sqrt 2,
    so any rotation followed by the central input_size crop has no empty corners."""
    side = int(np.ceil(input_size * np.sqrt(2.0))) + 2
    if data_eval_root:
        scan = scan_image_folder(data_eval_root, labelled=True)
        images = np.stack([_square_resize(_read_rgb(p), side) for p in scan.files])
        return {"folder": (images, np.asarray(scan.labels, np.int64))}
    rng = np.random.default_rng([seed, 2])  # held out: other seed than pretraining
    tex, tex_labels = synthetic.synthetic_patches(per_class, num_classes, side, bias_deg, rng)
    ihc, ihc_labels = synthetic.ihc_labelled_tiles(side)
    return {"synthetic": (tex, tex_labels), "ihc": (ihc, ihc_labels)}


def _square_resize(image: np.ndarray, side: int) -> np.ndarray:
    """Centre square crop then resize to side x side (uint8 [side, side, 3])."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    y, x = (h - s) // 2, (w - s) // 2
    return np.asarray(Image.fromarray(image[y:y + s, x:x + s]).resize((side, side),
                                                                      Image.BICUBIC))


def read_slide_labels(root: str | Path) -> list[tuple[Path, int, str]]:
    """`<root>/labels.csv` (header `slide,label`) + `<root>/slides/<slide>` -> (path, id, name).

    Blank lines are skipped; any other malformed line, a missing slide file or a duplicated slide
    is a DataError naming the line.
    """
    root = Path(root)
    csv = root / "labels.csv"
    layout = "<root>/labels.csv with a header `slide,label` and the files in <root>/slides/"
    if not csv.is_file():
        raise MissingPathError(f"{csv} not found", layout)
    try:
        lines = csv.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {csv} ({type(err).__name__})", "a UTF-8 text file") from None
    if not lines or [c.strip() for c in lines[0].split(",")] != ["slide", "label"]:
        raise DataError(f"{csv}: first line must be the header `slide,label`", layout)
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [c.strip() for c in line.split(",")]
        if len(fields) != 2 or not all(fields):
            raise DataError(f"{csv} line {number}: {line[:80]!r} is not `slide,label`", layout)
        rows.append((number, *fields))
    if not rows:
        raise DataError(f"{csv} lists no slides", layout)
    names = sorted({label for _, _, label in rows})
    out, seen = [], set()
    for number, slide, label in rows:
        path = root / "slides" / slide
        if slide in seen:
            raise DataError(f"{csv} line {number}: slide {slide!r} is listed twice", layout)
        seen.add(slide)
        if not path.is_file():
            raise MissingPathError(f"{csv} line {number} lists {slide!r} but {path} does not "
                                   "exist", layout)
        out.append((path, names.index(label), label))
    return out
