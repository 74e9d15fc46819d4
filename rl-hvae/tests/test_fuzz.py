"""Property-based tests (issue 23): the config parser and every on-disk reader either succeed
with the right count or raise a UserError, for random input and random damage to valid files."""

import gzip
import io
import pickle
from dataclasses import fields

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl_hvae.config import Config, load_config, parse_config
from rl_hvae.data import load_split
from rl_hvae.runtime import UserError, load_checkpoint, save_checkpoint

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FIELDS = [f.name for f in fields(Config)]
VALUES = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str),
                   st.floats(allow_nan=True, allow_infinity=True).map(str),
                   st.sampled_from(["true", "0", "rl", "released", "cached", "cpu", "1,2",
                                    "2,2,1,1,1", "", "-1", "1e400", "nan"]))


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS).map("--{}".format),
                                    st.text(max_size=10)), VALUES), max_size=5),
       st.booleans())
def test_parse_config_gives_config_or_user_error(pairs, odd):
    argv = [t for pair in pairs for t in pair] + (["--steps"] if odd else [])
    try:
        cfg = parse_config(argv)
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert isinstance(cfg, Config)


TOML_VALUES = st.one_of(st.integers(-5, 10**9).map(str), st.floats().map(repr),
                        st.sampled_from(["true", '"rl"', '"released"', "[2, 2, 1, 1, 1]",
                                         "[1, 2]", '"x"', "{a = 1}", "[[1]]", "1979-05-27",
                                         '"cuda:0"', "inf", "nan"]))


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS + ["bogus", "a.b"]), TOML_VALUES), max_size=6),
       st.text(max_size=20))
def test_toml_presets_give_config_or_user_error(tmp_path, lines, junk):
    path = tmp_path / "fuzz.toml"
    text = "\n".join(f"{k} = {v}" for k, v in lines) + "\n" + junk
    path.write_text(text, encoding="utf-8")
    try:
        cfg = load_config(path)
    except UserError:
        return
    assert isinstance(cfg, Config)


def _damage(data: bytes, how: tuple[int, int, int]) -> bytes:
    """how = (kind, position, byte): kind 0 truncates at position, 1 overwrites a byte,
    2 inserts one."""
    kind, pos, byte = how
    pos = pos % (len(data) + 1)
    if kind == 0:
        return data[:pos]
    if kind == 1 and pos < len(data):
        return data[:pos] + bytes([byte]) + data[pos + 1:]
    return data[:pos] + bytes([byte]) + data[pos:]


DAMAGE = st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255))


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                     for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _expect(call, count: int) -> None:
    """call() returns an ImageSet of `count` examples, or raises a UserError."""
    try:
        data = call()
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert len(data) == count and data.labels.shape == (count,)
    assert torch.isfinite(data.images).all() and 0 <= data.images.min() <= data.images.max() <= 1


@FUZZ
@given(DAMAGE, st.booleans(), st.booleans())
def test_idx_files_damaged(tmp_path, how, labels_file, gz):
    rng = np.random.default_rng(0)
    files = {"t10k-images-idx3-ubyte": _idx(rng.integers(0, 256, (3, 6, 6))),
             "t10k-labels-idx1-ubyte": _idx(np.arange(3)),
             "train-images-idx3-ubyte": _idx(rng.integers(0, 256, (3, 6, 6)))}
    target = "t10k-labels-idx1-ubyte" if labels_file else "t10k-images-idx3-ubyte"
    for name, data in files.items():
        raw = gzip.compress(data, mtime=0) if gz else data
        (tmp_path / (name + (".gz" if gz else ""))).write_bytes(
            _damage(raw, how) if name == target else raw)
    _expect(lambda: load_split("mnist", str(tmp_path), "val"), 3)


@FUZZ
@given(DAMAGE)
def test_cifar_batch_damaged(tmp_path, how):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    batch = {"batch_label": "testing batch 1 of 1", "labels": [3, 7],
             "data": rng.integers(0, 256, (2, 3072), dtype=np.uint8), "filenames": ["a", "b"]}
    (folder / "test_batch").write_bytes(_damage(pickle.dumps(batch, protocol=2), how))
    _expect(lambda: load_split("cifar10", str(tmp_path), "val"), 2)


@FUZZ
@given(DAMAGE)
def test_npz_damaged(tmp_path, how):
    buf = io.BytesIO()
    np.savez(buf, images=np.arange(4 * 5 * 5, dtype=np.uint8).reshape(4, 5, 5),
             labels=np.arange(4))
    (tmp_path / "test.npz").write_bytes(_damage(buf.getvalue(), how))
    _expect(lambda: load_split("npz", str(tmp_path), "val"), 4)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("ck") / "last.pt"
    save_checkpoint(path, step=3, config={"seed": 0}, model={"w": torch.arange(6.0)},
                    optimizer={"state": {}}, rng_ranks=[{"cpu": torch.get_rng_state()}])
    return path.read_bytes()


@FUZZ
@given(DAMAGE)
def test_checkpoint_damaged(tmp_path, checkpoint_bytes, how):
    path = tmp_path / "last.pt"
    path.write_bytes(_damage(checkpoint_bytes, how))
    try:
        ckpt = load_checkpoint(path)
    except UserError as err:
        assert "weights_only" not in str(err) and "\n" not in str(err)
        return
    assert isinstance(ckpt["step"], int) and isinstance(ckpt["model"], dict)
