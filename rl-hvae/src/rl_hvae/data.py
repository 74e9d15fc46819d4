"""Data: scikit-learn's bundled digits (default, offline) and the paper's datasets from local files.

All sets are returned as float tensors in [0, 1], shape [N, C, H, W], with integer labels [N].
Binarised sets are re-binarised every batch (dynamic binarisation, as the official
FashionMNISTBinarized train split); evaluation uses one fixed binarisation.
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


class DatasetError(FileNotFoundError):
    """A dataset folder is missing or malformed; the message names the expected files."""


@dataclass
class ImageSet:
    images: torch.Tensor  # [N, C, H, W] float in [0, 1]
    labels: torch.Tensor  # [N] int64

    def __len__(self) -> int:
        return self.images.shape[0]


def load_digits_split(split: str, val_fraction: float = 0.2, seed: int = 0) -> ImageSet:
    """sklearn's 1,797 8x8 digits (16 grey levels -> [0, 1]); a fixed random train/val split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N, 1, 8, 8]
    labels = torch.tensor(digits.target, dtype=torch.int64)
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(1234 + seed))
    n_val = int(round(val_fraction * len(labels)))
    idx = perm[n_val:] if split == "train" else perm[:n_val]
    return ImageSet(images[idx], labels[idx])


def _open_maybe_gz(folder: Path, name: str) -> bytes:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            opener = gzip.open if candidate.suffix == ".gz" else open
            with opener(candidate, "rb") as f:
                return f.read()
    raise DatasetError(f"missing {name}[.gz] in {folder}")


def read_idx(raw: bytes) -> np.ndarray:
    """Parse an IDX file (MNIST format): magic 0x0000 08 <ndim>, big-endian dims, uint8 data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError("not an uint8 IDX file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DatasetError(f"IDX file truncated: header says {dims}, found {data.size} values")
    return data.reshape(dims)


def _find_idx_folder(root: Path, name: str) -> Path:
    """Accept <root>/ or torchvision's <root>/<Name>/raw/ layout."""
    sub = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[name]
    for folder in (root, root / sub / "raw", root / sub):
        if any((folder / f"{IDX_FILES['train'][0]}{ext}").is_file() for ext in ("", ".gz")):
            return folder
    files = ", ".join(f"{f}[.gz]" for pair in IDX_FILES.values() for f in pair)
    raise DatasetError(f"{name}: no IDX files under {root} (or {root / sub / 'raw'}); "
                       f"expected {files}")


def load_idx_split(root: Path, name: str, split: str) -> ImageSet:
    folder = _find_idx_folder(root, name)
    img_name, lbl_name = IDX_FILES["train" if split == "train" else "test"]
    images = read_idx(_open_maybe_gz(folder, img_name))
    labels = read_idx(_open_maybe_gz(folder, lbl_name))
    if images.ndim != 3 or labels.shape[0] != images.shape[0]:
        raise DatasetError(f"{folder}: images {images.shape} and labels {labels.shape} disagree")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N, 1, 28, 28]
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)))


def load_cifar_split(root: Path, split: str) -> ImageSet:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    images, labels = [], []
    for name in CIFAR_FILES["train" if split == "train" else "test"]:
        path = folder / name
        if not path.is_file():
            raise DatasetError(f"cifar10: missing {path}; expected cifar-10-batches-py/"
                               f"{{data_batch_1..5,test_batch}} (the CIFAR-10 python version)")
        with path.open("rb") as f:
            batch = pickle.load(f, encoding="latin1")
        images.append(np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.extend(batch["labels"])
    x = torch.from_numpy(np.concatenate(images).astype(np.float32) / 255.0)  # [N, 3, 32, 32]
    return ImageSet(x, torch.tensor(labels, dtype=torch.int64))


def load_split(name: str, root: str, split: str, val_fraction: float = 0.2,
               seed: int = 0) -> ImageSet:
    """Load `split` ("train" or "val") of data set `name`; the paper's sets use their test split."""
    if name == "digits":
        return load_digits_split(split, val_fraction, seed)
    if not root:
        raise DatasetError(f"data_name={name!r} needs data_root (a local folder, see README); "
                           "nothing is downloaded")
    path = Path(root)
    if not path.is_dir():
        raise DatasetError(f"data_root {path} does not exist")
    if name in ("mnist", "fashion_mnist"):
        return load_idx_split(path, name, split)
    if name == "cifar10":
        return load_cifar_split(path, split)
    raise ValueError(f"unknown data_name {name!r}")


def batch_indices(n: int, batch_size: int, batch_number: int, seed: int) -> torch.Tensor:
    """Indices of batch `batch_number`: epochs are seeded permutations, so resuming at any step
    reproduces the same batches without saving loader state."""
    per_epoch = max(1, n // batch_size)
    epoch, within = divmod(batch_number, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return perm[within * batch_size: (within + 1) * batch_size]


def binarize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Dynamic binarisation: x ~ Bernoulli(grey level), reproducible from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=gen)
