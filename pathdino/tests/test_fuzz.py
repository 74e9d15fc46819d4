"""Property-based tests (hypothesis, derandomized) of the config parser and the on-disk loaders:
malformed input gives a UserError (or, for the loaders, a result whose count matches the valid
records), never another exception type from deep inside tomllib/PIL/tifffile/torch."""

from __future__ import annotations

import io
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pathdino.config import Config, _field_types, load_config, parse_config
from pathdino.data import SourceImages, read_slide_labels, scan_image_folder
from pathdino.runtime import UserError, load_checkpoint, save_checkpoint
from pathdino.slide import TiffSlide, write_pyramidal_tiff

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
KEYS = sorted(_field_types())
TEXT = st.text(alphabet=string.printable + "éλ\x00", max_size=12)
VALUES = st.one_of(TEXT, st.integers(-10**6, 10**6).map(str), st.floats().map(str),
                   st.sampled_from(["true", "0", "nan", "-inf", "1e999", "0.4,1.0", "",
                                    "cpu", "folder", "official", "9" * 50]))
TOML_VALUES = st.sampled_from([
    "1", "-3", "0", "1.5", "nan", "inf", "true", "false", '"x"', '""', "[1, 2]", "[0.4, 1.0]",
    '[0.4, "a"]', "[]", "{a = 1}", "1979-05-27", "07:32:00", '"synthetic"', '"folder"', "1e400",
    '"', "[", "= 1", "0x10", "1_000", "'lit'", '"""multi\nline"""'])


def _ok_or_user_error(fn, *args):
    try:
        return fn(*args)
    except UserError as err:
        assert "\n" not in str(err)
        return None


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), TEXT), VALUES), max_size=4))
def test_parse_config_gives_config_or_user_error(pairs):
    argv = [x for key, value in pairs for x in (f"--{key}", value)]
    cfg = _ok_or_user_error(parse_config, argv)
    assert cfg is None or isinstance(cfg, Config)


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), st.from_regex(r"[a-z_]{1,8}", 
                                                                          fullmatch=True)),
                          TOML_VALUES), max_size=5),
       st.binary(max_size=20))
def test_toml_preset_gives_config_or_user_error(tmp_path_factory, lines, junk):
    path = tmp_path_factory.mktemp("toml") / "c.toml"
    path.write_bytes("\n".join(f"{k} = {v}" for k, v in lines).encode() + b"\n" + junk)
    cfg = _ok_or_user_error(load_config, path)
    assert cfg is None or isinstance(cfg, Config)


def _damage(data: bytes, kind: str, position: float, payload: bytes) -> bytes:
    """Truncate at `position` (fraction), or overwrite bytes there with `payload`."""
    cut = int(position * len(data))
    if kind == "truncate":
        return data[:cut]
    return data[:cut] + payload + data[cut + len(payload):]


DAMAGE = (st.sampled_from(["truncate", "corrupt"]), st.floats(0.0, 1.0),
          st.binary(min_size=1, max_size=16))


def _image_bytes(fmt: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(buffer, fmt)
    return buffer.getvalue()


IMAGES = {"a/1.png": _image_bytes("PNG", 0), "a/2.jpg": _image_bytes("JPEG", 1),
          "b/3.png": _image_bytes("PNG", 2)}


@FUZZ
@given(st.sampled_from(sorted(IMAGES)), *DAMAGE)
def test_image_folder_damage(tmp_path_factory, victim, kind, position, payload):
    root = tmp_path_factory.mktemp("images")
    for name, data in IMAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(_damage(data, kind, position, payload) if name == victim
                                  else data)
    scan = _ok_or_user_error(scan_image_folder, root, True)
    if scan is None:
        return
    assert len(scan.files) == 3 and scan.labels == [0, 0, 1]  # every file listed, none dropped
    images = SourceImages(files=scan.files)
    for i in range(len(images)):
        item = _ok_or_user_error(images.__getitem__, i)
        assert item is None or tuple(item.shape) == (3, 24, 20)


@pytest.fixture(scope="module")
def slide_bytes(tmp_path_factory) -> bytes:
    rng = np.random.default_rng(0)
    image = rng.integers(100, 230, (128, 96, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("slide") / "s.tif"
    write_pyramidal_tiff(path, image, levels=2, tile=32)
    return path.read_bytes()


@FUZZ
@given(*DAMAGE)
def test_tiff_slide_damage(tmp_path_factory, slide_bytes, kind, position, payload):
    path = tmp_path_factory.mktemp("slide") / "s.tif"
    path.write_bytes(_damage(slide_bytes, kind, position, payload))

    def read():
        with TiffSlide(path) as slide:
            thumb, _ = slide.get_thumbnail(64)
            region = slide.read_region((10, 20), 0, (40, 30))
            return slide.level_dimensions, thumb, region

    result = _ok_or_user_error(read)
    if result is not None:
        _, thumb, region = result
        assert region.shape == (30, 40, 3) and region.dtype == np.uint8
        assert max(thumb.shape[:2]) <= 64 and thumb.shape[2] == 3


@FUZZ
@given(*DAMAGE)
def test_slide_labels_damage(tmp_path_factory, kind, position, payload):
    root = tmp_path_factory.mktemp("labels")
    (root / "slides").mkdir()
    for name in ("a.tif", "b.tif", "c.tif"):
        (root / "slides" / name).write_bytes(b"")
    text = b"slide,label\na.tif,tumour\nb.tif,normal\n\nc.tif,tumour\n"
    damaged = _damage(text, kind, position, payload)
    (root / "labels.csv").write_bytes(damaged)
    rows = _ok_or_user_error(read_slide_labels, root)
    if rows is not None:  # it returned: one row per non-blank line after the header
        lines = damaged.decode("utf-8").splitlines()[1:]
        assert len(rows) == sum(1 for line in lines if line.strip())
        assert all(Path(p).parent == root / "slides" for p, _, _ in rows)


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    import torch

    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    save_checkpoint(path, step=3, config={"seed": 0}, model={"w": torch.arange(6.0)})
    return path.read_bytes()


@FUZZ
@given(*DAMAGE)
def test_checkpoint_damage(tmp_path_factory, checkpoint_bytes, kind, position, payload):
    path = tmp_path_factory.mktemp("ckpt") / "last.pt"
    path.write_bytes(_damage(checkpoint_bytes, kind, position, payload))
    ckpt = _ok_or_user_error(load_checkpoint, path)
    if ckpt is not None:
        assert {"format_version", "step", "config", "model"} <= set(ckpt)
