"""Property-based tests (hypothesis): the config parser and every on-disk loader either return a
consistent result or raise a UserError; never another exception, never a silently wrong count."""

import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from clap_vad.config import Config, load_config, parse_config
from clap_vad.data import VideoSet, check_video_set
from clap_vad.real_data import (
    _ranges_file,
    _scene_map,
    load_features,
    load_ground_truth,
    load_real,
)
from clap_vad.runtime import UserError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
FIELDS = list(Config.__dataclass_fields__)
AUTHOR = "/home/anas.al-lahham/AnomalyDetection/RTFM/UCF_Train_ten_crop_i3d"
TRAIN = ["Abuse002_x264_i3d", "Arrest002_x264_i3d", "Normal_Videos001_x264_i3d",
         "Normal_Videos002_x264_i3d"]


def _mutate(data: bytes, cut: int, edits: list[tuple[int, int]]) -> bytes:
    """Truncate to `cut` bytes (if shorter), then overwrite bytes at the given positions."""
    out = bytearray(data[:cut])
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


MUTATION = st.tuples(st.integers(0, 4000),
                     st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=3))


# ----------------------------------------------------------------------------- config

VALUES = st.one_of(st.integers(-5, 300), st.floats(allow_nan=True, allow_infinity=True),
                   st.booleans(), st.text(max_size=8), st.sampled_from(["true", "0", "1.5", "ucf",
                                                                         "event", "cpu", ""]))


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), VALUES),
                max_size=4))
def test_parse_config_command_line(pairs):
    argv = []
    for key, value in pairs:
        argv += [f"--{key}", str(value)]
    try:
        cfg = parse_config(argv)
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    assert isinstance(cfg, Config)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and np.isnan(v):
        return "nan"
    if isinstance(v, float) and abs(v) == float("inf"):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (int, float)):
        return repr(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FIELDS + ["stepz", "model"]), VALUES), max_size=4),
       st.text(alphabet=string.printable, max_size=40), st.booleans())
def test_load_config_toml(tmp_path, pairs, raw, use_raw):
    path = tmp_path / "fuzz.toml"
    if use_raw:
        path.write_text(raw)
    else:
        path.write_text("".join(f"{k} = {_toml_value(v)}\n" for k, v in pairs))
    try:
        cfg = load_config(path)
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    assert isinstance(cfg, Config)


# ----------------------------------------------------------------------------- list files


@pytest.fixture(scope="module")
def ucf_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ucf")
    (root / "list").mkdir()
    (root / "labels").mkdir()
    (root / "feat").mkdir()
    lines, start = [], 0
    for n in TRAIN:
        np.save(root / "feat" / f"{n}.npy", np.ones((3, 10, 4), np.float32))
        lines.append(f"{AUTHOR}/{n}.npy,{start},{start + 3}")
        start += 3
    np.save(root / "feat/Abuse028_x264_i3d.npy", np.ones((2, 10, 4), np.float32))
    (root / "list/UCF_Test_ten_crop_i3d_complete_V1.txt").write_text(
        f"{AUTHOR}/Abuse028_x264_i3d.npy,0,2\n")
    np.save(root / "labels/gt-ucf-RTFM.npy", np.zeros(32, np.float32))
    return root, ("\n".join(lines) + "\n").encode()


@FUZZ
@given(MUTATION)
def test_list_file_corruption(ucf_root, mutation):
    root, valid = ucf_root
    data = _mutate(valid, *mutation)
    (root / "list/UCF_Train_ten_crop_i3d_complete_V1.txt").write_bytes(data)
    try:
        train, _ = load_real("ucf", str(root), 16, num_crops=10)
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    # returned: one video per non-empty line, each one of the files that exist
    stems = [Path(line.strip().split(",")[0]).stem for line in data.decode().splitlines()
             if line.strip()]
    assert train.names == stems and set(stems) <= set(TRAIN)
    assert all(f.shape == (3, 10, 4) for f in train.features)


# ----------------------------------------------------------------------------- .npy files


@FUZZ
@given(MUTATION)
def test_feature_file_corruption(tmp_path, mutation):
    path = tmp_path / "video.npy"
    np.save(path, np.random.default_rng(0).random((4, 10, 8), dtype=np.float32))
    path.write_bytes(_mutate(path.read_bytes(), *mutation))
    try:
        arr = load_features(path)
        check_video_set(VideoSet([arr], ["v"], np.zeros(1), np.zeros(1)), 8, 10, 16, "fuzz")
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    assert arr.shape == (4, 10, 8) and arr.dtype == np.float32 and np.isfinite(arr).all()


@FUZZ
@given(MUTATION)
def test_ground_truth_file_corruption(tmp_path, mutation):
    path = tmp_path / "gt.npy"
    gt = np.zeros(48, np.float32)
    gt[10:20] = 1
    np.save(path, gt)
    path.write_bytes(_mutate(path.read_bytes(), *mutation))
    try:
        out = load_ground_truth(path, 48, truncate=False)
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    assert out.shape == (48,) and np.isin(out, (0.0, 1.0)).all()


@FUZZ
@given(MUTATION)
def test_video_range_file_corruption(tmp_path, mutation):
    path = tmp_path / "nalist_XD.npy"
    np.save(path, np.array([[0, 4], [4, 9], [9, 12]], dtype=np.int64))
    path.write_bytes(_mutate(path.read_bytes(), *mutation))
    try:
        ranges = _ranges_file(path)
    except UserError as err:
        event(f"UserError: {type(err).__name__}")
        return
    event("loaded")
    assert len(ranges) == 3


@FUZZ
@given(st.binary(max_size=60), st.text(max_size=30))
def test_scenes_csv(tmp_path, raw, text):
    for content in (raw, text.encode("utf-8", "surrogatepass") if text.isprintable() else raw):
        (tmp_path / "scenes.csv").write_bytes(content)
        try:
            scenes = _scene_map(tmp_path)
        except UserError:
            event("UserError")
            continue
        event("loaded")
        assert all(isinstance(v, int) and v >= 0 for v in scenes.values())
