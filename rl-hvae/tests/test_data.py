import gzip
import pickle

import numpy as np
import pytest
import torch

from rl_hvae.data import DatasetError, batch_indices, load_digits_split, load_split, read_idx


def _write_idx(path, array, gz=False):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_digits_split_is_disjoint_and_in_range():
    train, val = load_digits_split("train"), load_digits_split("val")
    assert train.images.shape[1:] == (1, 8, 8) and len(train) + len(val) == 1797
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert len(val) == 359


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip_in_torchvision_layout(tmp_path, gz):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (5, 28, 28))
    for prefix, n in (("train", 5), ("t10k", 5)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", imgs[:n], gz)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n), gz)
    data = load_split("fashion_mnist", str(tmp_path), "train")
    assert data.images.shape == (5, 1, 28, 28)
    torch.testing.assert_close(data.images[:, 0], torch.tensor(imgs / 255.0, dtype=torch.float32))
    assert data.labels.tolist() == [0, 1, 2, 3, 4]


def test_missing_and_malformed_files_name_what_is_expected(tmp_path):
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_split("mnist", str(tmp_path), "train")
    with pytest.raises(DatasetError, match="needs data_root"):
        load_split("mnist", "", "train")
    with pytest.raises(DatasetError, match="data_batch_1"):
        load_split("cifar10", str(tmp_path), "train")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(b"\x01\x02\x03\x04")
    (tmp_path / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big")
                                                       + (28).to_bytes(4, "big") * 2 + b"\x00" * 7)
    with pytest.raises(DatasetError, match="truncated"):
        load_split("mnist", str(tmp_path), "train")


def test_cifar_python_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with (folder / name).open("wb") as f:
            pickle.dump({"data": np.full((2, 3072), 255, np.uint8), "labels": [1, 2]}, f)
    data = load_split("cifar10", str(tmp_path), "train")
    assert data.images.shape == (10, 3, 32, 32) and float(data.images.max()) == 1.0
    assert len(load_split("cifar10", str(tmp_path), "val")) == 2


def test_batch_indices_are_seeded_epoch_permutations():
    a = torch.cat([batch_indices(10, 5, b, seed=3) for b in range(2)])
    assert sorted(a.tolist()) == list(range(10))
    assert torch.equal(batch_indices(10, 5, 1, seed=3), batch_indices(10, 5, 1, seed=3))
    assert not torch.equal(batch_indices(10, 5, 2, seed=3), batch_indices(10, 5, 0, seed=3))


def test_npz_round_trip_and_checks(tmp_path):
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (6, 12, 12), dtype=np.uint8)
    for split in ("train", "test"):
        np.savez(tmp_path / f"{split}.npz", images=imgs, labels=np.arange(6))
    data = load_split("npz", str(tmp_path), "val")
    assert data.images.shape == (6, 1, 12, 12) and data.labels.tolist() == list(range(6))
    torch.testing.assert_close(data.images[:, 0], torch.tensor(imgs / 255.0, dtype=torch.float32))
    np.savez(tmp_path / "train.npz", images=imgs.astype(np.float32) * 2.0, labels=np.arange(6))
    with pytest.raises(DatasetError, match="uint8 or float in"):
        load_split("npz", str(tmp_path), "train")
    np.savez(tmp_path / "train.npz", images=imgs, labels=np.arange(5))
    with pytest.raises(DatasetError, match="disagree"):
        load_split("npz", str(tmp_path), "train")


def test_cifar_reader_refuses_foreign_pickles_without_running_them(tmp_path):
    """A batch file whose pickle calls a function must not be executed."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Evil(), "labels": [1]}))
    with pytest.raises(DatasetError, match="not a CIFAR-10 python batch"):
        load_split("cifar10", str(tmp_path), "val")
    assert not marker.exists()


def test_smoke_data_is_read_by_the_idx_loader_at_paper_size(tmp_path):
    import sys

    from conftest import ROOT

    sys.path.insert(0, ROOT)
    import smoke

    smoke.write_idx_dataset(tmp_path, n_train=20, n_test=10)
    train = load_split("fashion_mnist", str(tmp_path), "train")
    assert train.images.shape == (20, 1, 28, 28) and len(load_split("fashion_mnist",
                                                                     str(tmp_path), "val")) == 10
