import numpy as np
import pytest
import torch

from vl2v_adip.data import (
    BENCH_DOMAINS,
    EXTRA_DOMAINS,
    SYNTH_CLASSES,
    collate,
    domainbed_out_in,
    leave_one_domain_out,
    load_domainbed,
    make_synthetic,
    sample_batch_indices,
    seed_hash,
)
from vl2v_adip.runtime import DataError


def test_synthetic_shapes_and_balance():
    data = make_synthetic(BENCH_DOMAINS + EXTRA_DOMAINS, 12, 32, seed=0)
    assert data.classes == list(SYNTH_CLASSES)
    for env in data.envs:
        assert env.images.shape == (12, 3, 32, 32)
        assert 0 <= float(env.images.min()) and float(env.images.max()) <= 1
        assert torch.equal(torch.bincount(env.labels), torch.full((6,), 2))
    again = make_synthetic(BENCH_DOMAINS, 12, 32, seed=0)
    assert torch.equal(again.envs[1].images, data.envs[1].images)  # deterministic


@pytest.mark.parametrize("test_domain", [0, 1, 2, 3])
def test_leave_one_domain_out_never_leaks(test_domain):
    sizes = [50, 40, 61, 33]
    split = leave_one_domain_out(sizes, test_domain, 0.2, trial_seed=3)
    train_envs = {e for e, _ in split.train}
    val_envs = {e for e, _ in split.val}
    assert test_domain not in train_envs | val_envs
    assert train_envs == val_envs == set(range(4)) - {test_domain}
    # the held-out domain is scored on its "in" part (official test_in): 80 %
    assert split.test[0] == test_domain
    assert len(split.test[1]) == sizes[test_domain] - int(sizes[test_domain] * 0.2)
    for (e, tr), (_, va) in zip(split.train, split.val):
        assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == sizes[e]
        assert len(va) == int(sizes[e] * 0.2)
    # batches only come from training domains' "in" parts
    for step in range(5):
        for e, idx in sample_batch_indices(split.train, 8, step, seed=0):
            assert e != test_domain
            assert np.isin(idx, dict(split.train)[e]).all()
    with pytest.raises(ValueError):
        leave_one_domain_out(sizes, 4, 0.2, 0)


def test_split_is_domainbeds_seeded_shuffle():
    """Official split_dataset(env, int(n * 0.2), seed_hash(trial_seed, env)): a legacy
    RandomState shuffle of 0..n-1, first 20 % "out". Pinned values guard the md5 seed."""
    assert seed_hash(0, 0) == 894182419 and seed_hash(0, 1) == 1514274641  # md5("(0, 0)")
    keys = list(range(10))
    np.random.RandomState(seed_hash(0, 2)).shuffle(keys)
    out_idx, in_idx = domainbed_out_in(10, 0.2, 0, 2)
    assert out_idx.tolist() == keys[:2] and in_idx.tolist() == keys[2:]
    # the split depends on the trial seed only, not on the run seed or the held-out domain
    a = leave_one_domain_out([30, 30, 30], 0, 0.2, trial_seed=0)
    b = leave_one_domain_out([30, 30, 30], 1, 0.2, trial_seed=0)
    assert np.array_equal(dict(a.val)[2], dict(b.val)[2])
    assert np.array_equal(a.test[1], np.sort(domainbed_out_in(30, 0.2, 0, 0)[1]))
    c = leave_one_domain_out([30, 30, 30], 0, 0.2, trial_seed=1)
    assert not np.array_equal(dict(a.val)[2], dict(c.val)[2])


def test_batches_depend_only_on_step():
    split = leave_one_domain_out([20, 20, 20], 0, 0.2, 0)
    a = sample_batch_indices(split.train, 4, 7, 1)
    b = sample_batch_indices(split.train, 4, 7, 1)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    data = make_synthetic(BENCH_DOMAINS[:3], 20, 16, 0)
    x, y, d = collate(data, a)
    assert x.shape == (8, 3, 16, 16) and y.shape == (8,) and set(d.tolist()) == {1, 2}


def _make_pacs(root, domains=("art_painting", "cartoon", "photo", "sketch"),
               classes=("dog", "horse")):
    from PIL import Image
    for d in domains:
        for c in classes:
            (root / "PACS" / d / c).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                Image.new("RGB", (10, 12), (i * 50, 20, 30)).save(root / "PACS" / d / c / f"{i}.jpg")


def test_domainbed_folder_loads(tmp_path):
    _make_pacs(tmp_path)
    data = load_domainbed(tmp_path, "PACS", image_size=16)
    assert data.domains == ["art_painting", "cartoon", "photo", "sketch"]
    assert data.classes == ["dog", "horse"]
    x, y = data.envs[2][3]
    assert x.shape == (3, 16, 16) and y == 1


def test_domainbed_missing_domain(tmp_path):
    _make_pacs(tmp_path, domains=("art_painting", "cartoon", "photo"))
    with pytest.raises(FileNotFoundError, match="sketch"):
        load_domainbed(tmp_path, "PACS")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        load_domainbed(tmp_path, "VLCS")


def test_domainbed_inconsistent_classes(tmp_path):
    _make_pacs(tmp_path)
    (tmp_path / "PACS" / "sketch" / "giraffe").mkdir()
    with pytest.raises(ValueError, match="giraffe"):
        load_domainbed(tmp_path, "PACS")


def test_domainbed_empty_class_folder(tmp_path):
    _make_pacs(tmp_path)
    for f in (tmp_path / "PACS" / "photo" / "dog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="holds no images"):
        load_domainbed(tmp_path, "PACS")


def test_domainbed_undecodable_image(tmp_path):
    _make_pacs(tmp_path)
    (tmp_path / "PACS" / "photo" / "dog" / "0.jpg").write_bytes(b"not a jpeg")
    data = load_domainbed(tmp_path, "PACS", image_size=16)
    with pytest.raises(DataError, match="failed to decode.*0.jpg"):
        data.envs[2][0]
