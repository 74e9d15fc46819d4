"""Data: scikit-learn's bundled digits (default, offline) and the paper's datasets from local files.

All sets are returned as float tensors in [0, 1], shape [N, C, H, W], with integer labels [N].
Readers check what they read (headers, sizes, label ranges) and raise `DataError` naming the
file; CIFAR batches are unpickled with only numpy's array constructors allowed, npz files
without pickle.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .runtime import DataError

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
NPZ_FILES = {"train": "train.npz", "test": "test.npz"}
DatasetError = DataError  # the name used before issue 23


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


def _read_maybe_gz(folder: Path, name: str) -> tuple[bytes, Path]:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            try:
                if candidate.suffix == ".gz":
                    with gzip.open(candidate, "rb") as f:
                        return f.read(), candidate
                return candidate.read_bytes(), candidate
            except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
                raise DataError(f"{candidate}: unreadable ({type(err).__name__})",
                                "a truncated download? fetch the file again") from None
    raise DataError(f"missing {name}[.gz] in {folder}", "see README, section Data")


def read_idx(raw: bytes, where: str = "IDX file") -> np.ndarray:
    """Parse an IDX file (MNIST format): magic 0x0000 08 <ndim>, big-endian dims, uint8 data."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{where}: not an uint8 IDX file (bad magic number)", "MNIST IDX format")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{where}: IDX header truncated or with {ndim} dims", "MNIST IDX format")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) - header != math.prod(dims):
        raise DataError(f"{where}: header says {dims} = {math.prod(dims)} values, "
                        f"the file holds {len(raw) - header}", "truncated or corrupt file")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find_idx_folder(root: Path, name: str) -> Path:
    """Accept <root>/ or torchvision's <root>/<Name>/raw/ layout."""
    sub = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[name]
    for folder in (root, root / sub / "raw", root / sub):
        if any((folder / f"{IDX_FILES['train'][0]}{ext}").is_file() for ext in ("", ".gz")):
            return folder
    files = ", ".join(f"{f}[.gz]" for pair in IDX_FILES.values() for f in pair)
    raise DataError(f"{name}: no IDX files under {root} (or {root / sub / 'raw'})",
                    f"expected {files}")


def load_idx_split(root: Path, name: str, split: str) -> ImageSet:
    folder = _find_idx_folder(root, name)
    img_name, lbl_name = IDX_FILES["train" if split == "train" else "test"]
    raw, file = _read_maybe_gz(folder, img_name)
    images = read_idx(raw, str(file))
    raw, file = _read_maybe_gz(folder, lbl_name)
    labels = read_idx(raw, str(file))
    if images.ndim != 3 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{folder}: images {images.shape} and labels {labels.shape} disagree",
                        "expected images [N, H, W] and labels [N]")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)  # [N, 1, H, W]
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)))


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
               ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
               ("numpy._core.numeric", "_frombuffer"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """One CIFAR-10 python batch -> (uint8 [N, 3, 32, 32], N labels in 0..9)."""
    try:
        with path.open("rb") as f:
            batch = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
        data, labels = np.asarray(batch["data"]), list(batch["labels"])
    except Exception as err:  # any unpickling failure of a corrupt or foreign file
        raise DataError(f"{path}: not a CIFAR-10 python batch ({type(err).__name__})",
                        "the python version, cifar-10-python.tar.gz") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: data {data.dtype} {data.shape}, expected uint8 [N, 3072]",
                        "the python version of CIFAR-10")
    if len(labels) != data.shape[0] or not all(isinstance(v, int) and 0 <= v < 10
                                               for v in labels):
        raise DataError(f"{path}: {len(labels)} labels for {data.shape[0]} images, or a label "
                        "outside 0..9", "the python version of CIFAR-10")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar_split(root: Path, split: str) -> ImageSet:
    folder = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    images, labels = [], []
    for name in CIFAR_FILES["train" if split == "train" else "test"]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"cifar10: missing {path}",
                            "expected cifar-10-batches-py/{data_batch_1..5,test_batch}")
        data, lbl = read_cifar_batch(path)
        images.append(data)
        labels.extend(lbl)
    x = torch.from_numpy(np.concatenate(images).astype(np.float32) / 255.0)  # [N, 3, 32, 32]
    return ImageSet(x, torch.tensor(labels, dtype=torch.int64))


def read_npz(path: Path) -> ImageSet:
    """`images` uint8 [N, H, W] / [N, C, H, W] (0..255) or float in [0, 1]; `labels` int [N]."""
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = np.asarray(z["images"]), np.asarray(z["labels"])
    except Exception as err:  # bad zip, truncated member, pickled object, missing key
        raise DataError(f"{path}: not a readable npz with arrays 'images' and 'labels' "
                        f"({type(err).__name__})", "README, section Data") from None
    if images.ndim == 3:
        images = images[:, None]  # [N, 1, H, W]
    if images.ndim != 4 or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{path}: images {images.shape} and labels {labels.shape} disagree",
                        "expected images [N, (C,) H, W] and labels [N]")
    if images.dtype == np.uint8:
        x = images.astype(np.float32) / 255.0
    elif images.dtype.kind == "f" and np.isfinite(images).all() and images.size and \
            0.0 <= images.min() and images.max() <= 1.0:
        x = images.astype(np.float32)
    else:
        raise DataError(f"{path}: images must be uint8 or float in [0, 1], got {images.dtype}",
                        "README, section Data")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path}: labels must be integers, got {labels.dtype}", "README, Data")
    return ImageSet(torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)))


def load_split(name: str, root: str, split: str, val_fraction: float = 0.2,
               seed: int = 0) -> ImageSet:
    """Load `split` ("train" or "val") of data set `name`; the paper's sets use their test split."""
    if name == "digits":
        return load_digits_split(split, val_fraction, seed)
    if not root:
        raise DataError(f"data_name={name!r} needs data_root", "a local folder, see README; "
                        "nothing is downloaded")
    path = Path(root)
    if not path.is_dir():
        raise DataError(f"data_root {path} does not exist", "--data_root, see README")
    if name in ("mnist", "fashion_mnist"):
        data = load_idx_split(path, name, split)
    elif name == "cifar10":
        data = load_cifar_split(path, split)
    elif name == "npz":
        file = path / NPZ_FILES["train" if split == "train" else "test"]
        if not file.is_file():
            raise DataError(f"npz: missing {file}", "expected train.npz and test.npz")
        data = read_npz(file)
    else:
        raise DataError(f"unknown data_name {name!r}", "digits, mnist, fashion_mnist, cifar10, npz")
    if len(data) == 0 or data.images.shape[-1] != data.images.shape[-2]:
        raise DataError(f"{root}: {split} split has images {tuple(data.images.shape)}",
                        "need at least one square image")
    return data


def batch_indices(n: int, batch_size: int, batch_number: int, seed: int) -> torch.Tensor:
    """Indices of batch `batch_number`: epochs are seeded permutations, so resuming at any step
    reproduces the same batches without saving loader state."""
    per_epoch = max(1, n // batch_size)
    epoch, within = divmod(batch_number, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return perm[within * batch_size: (within + 1) * batch_size]


def binarize(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Stochastic binarisation: x ~ Bernoulli(grey level), reproducible from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.bernoulli(x, generator=gen)


def prepare_batch(images: torch.Tensor, binarize_seed: int | None) -> torch.Tensor:
    """Binarise with `binarize_seed` (None: quantise to 8 bits for the discretised likelihood)."""
    if binarize_seed is not None:
        return binarize(images, binarize_seed)
    return torch.round(images * 255) / 255
