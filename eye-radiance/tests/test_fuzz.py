"""Property-based tests (issue 23): the config parser and the capture loader (transforms JSON,
16-bit TIFF frames, mask PNGs) either succeed with the right counts or raise a UserError; never
another exception from deep inside json/tifffile/PIL/torch."""

import dataclasses
import functools
import json
import shutil
import tempfile
import warnings
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eye_radiance.config import Config, parse_config
from eye_radiance.data import load_capture
from eye_radiance.runtime import UserError

KEYS = [f.name for f in dataclasses.fields(Config)]
FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
VALUES = st.one_of(st.text(max_size=8), st.integers(-10**6, 10**6).map(str),
                   st.floats(allow_nan=True).map(str), st.sampled_from(
                       ["true", "0", "1e999", "nan", "-1", "1,2", "ellipsoid", "auto", ""]))


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), VALUES),
                max_size=4))
def test_parse_config_gives_a_config_or_a_user_error(pairs):
    argv = [x for key, value in pairs for x in (f"--{key}", value)]
    try:
        assert isinstance(parse_config(argv), Config)
    except UserError as err:
        assert "\n" not in str(err)


@FUZZ
@given(st.text(max_size=120))
def test_parse_config_from_random_toml_text(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text)
        try:
            assert isinstance(parse_config(["--config", str(path)]), Config)
        except UserError as err:
            assert "\n" not in str(err)


@functools.lru_cache(maxsize=1)
def _capture() -> Path:
    from eye_radiance.synthetic import make_synthetic_capture

    root = make_synthetic_capture(Path(tempfile.mkdtemp()) / "capture", n_frames=1,
                                  image_size=32, seed=0)
    meta = json.loads((root / "transforms_train.json").read_text())
    for f in meta["frames"]:  # relative paths: the fuzzed copy is what gets read
        f["file_path"] = "./" + Path(f["file_path"]).name
        f["mask_path"] = "./train_masks/" + Path(f["mask_path"]).name
    (root / "transforms_train.json").write_text(json.dumps(meta))
    return root


def _corrupt(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    data = bytearray(data[: max(0, int(len(data) * cut))])
    for where, value in flips:
        if data:
            data[int(where * (len(data) - 1))] = value
    return bytes(data)


def _load_corrupted(name: str, cut: float, flips) -> None:
    src = _capture()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "capture"
        shutil.copytree(src, root)
        target = root / name
        target.write_bytes(_corrupt(target.read_bytes(), cut, flips))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cap = load_capture(root, erode_px=1)
        except UserError as err:
            assert "\n" not in str(err)
            return
        frames = json.loads((root / "transforms_train.json").read_text())["frames"]
        wanted = [f for f in frames if f.get("order", "left_eye") in ("left_eye", "right_eye")]
        assert cap.num_eyes + len(cap.skipped) == len(wanted)  # every entry kept or counted
        assert cap.rgb.shape[0] == cap.pixels.shape[0] == cap.eye.shape[0]


CORRUPTION = dict(cut=st.floats(0.0, 1.0),
                  flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=3))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(**CORRUPTION)
def test_corrupted_transforms_json(cut, flips):
    _load_corrupted("transforms_train.json", cut, flips)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(**CORRUPTION)
def test_corrupted_tiff_frame(cut, flips):
    _load_corrupted("frame_0000.tif", cut, flips)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(**CORRUPTION)
def test_corrupted_mask_png(cut, flips):
    _load_corrupted("train_masks/frame_0000_1.png", cut, flips)
