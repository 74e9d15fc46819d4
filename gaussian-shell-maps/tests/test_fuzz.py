"""Property-based tests (hypothesis) of the config parser and the on-disk loaders: random
truncations / byte corruptions of small valid files give a UserError or a documented skip,
never another exception type and never a silently wrong count (issue 23)."""

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from gaussian_shell_maps.config import Config, _field_types, parse_config
from gaussian_shell_maps.data import HumanImageFolder, read_labels
from gaussian_shell_maps.runtime import UserError
from gaussian_shell_maps.template import read_obj
from gaussian_shell_maps.tools import load_pose_sequence

FUZZ = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
KEYS = sorted(_field_types())
ROW = [float(i % 7) / 7 for i in range(107)]


def _corrupt(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    """Truncate at a fraction of the length, then overwrite a few bytes."""
    out = bytearray(data[: int(len(data) * cut)])
    for where, value in flips:
        if out:
            out[int(where * (len(out) - 1))] = value
    return bytes(out)


CORRUPTION = {"cut": st.floats(0.0, 1.0), "flips": st.lists(
    st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=4)}


# ---------------------------------------------------------------------------------- config
@FUZZ
@given(pairs=st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), st.text(max_size=12)),
                                st.one_of(st.text(max_size=12), st.integers().map(str),
                                          st.floats(allow_nan=True).map(str),
                                          st.sampled_from(["true", "0", "", "-1", "1e9"]))),
                      max_size=4))
def test_parse_config_cli_gives_config_or_user_error(pairs):
    argv = [x for k, v in pairs for x in (f"--{k}", v)]
    try:
        assert isinstance(parse_config(argv), Config)
    except UserError as err:
        assert "\n" not in str(err)


@FUZZ
@given(text=st.one_of(
    st.text(max_size=200),
    st.dictionaries(st.sampled_from(KEYS), st.one_of(
        st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(), st.text(max_size=8)), max_size=5).map(
        lambda d: "\n".join(f"{k} = {json.dumps(v)}" for k, v in d.items()))))
def test_parse_config_toml_gives_config_or_user_error(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            assert isinstance(parse_config(["--config", str(path)]), Config)
        except UserError as err:
            assert "\n" not in str(err)


# ------------------------------------------------------------------------------ label files
def _valid_json(form: str) -> bytes:
    names = [f"images/{i}.png" for i in range(3)]
    labels = ({n: ROW for n in names} if form == "dict" else [[n, ROW] for n in names])
    return json.dumps({"labels": labels}).encode()


def _expected_names(data: bytes) -> set[str] | None:
    """The image names a correct reader must return for this file, or None if it is not a
    readable label file (then the reader must raise a UserError)."""
    try:
        labels = json.loads(data.decode("utf-8"))["labels"]
        pairs = labels.items() if isinstance(labels, dict) else [tuple(e) for e in labels]
        out = {str(n) for n, _ in pairs}
    except Exception:  # noqa: BLE001 - any failure here means "not readable"
        return None
    return {n for n in out if Path(n).suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp",
                                                          ".webp")}


@FUZZ
@given(form=st.sampled_from(["dict", "list"]), **CORRUPTION)
def test_dataset_json_corruptions(form, cut, flips):
    data = _corrupt(_valid_json(form), cut, flips)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dataset.json").write_bytes(data)
        try:
            names, labels, _ = read_labels(tmp)
        except UserError:
            return
        expected = _expected_names(data)
        assert expected is not None and set(names) == expected, (names, expected)
        assert labels.shape == (len(names), 107) and np.isfinite(labels).all()


@pytest.fixture(scope="module")
def valid_mat(tmp_path_factory):
    import scipy.io

    cells = np.empty((3, 2), dtype=object)
    for i in range(3):
        cells[i, 0], cells[i, 1] = f"images/{i}.png", np.asarray(ROW)[None]
    path = tmp_path_factory.mktemp("mat") / "dataset.mat"
    scipy.io.savemat(str(path), {"labels": cells})
    return path.read_bytes()


@FUZZ
@given(**CORRUPTION)
def test_dataset_mat_corruptions(valid_mat, cut, flips):
    import scipy.io

    data = _corrupt(valid_mat, cut, flips)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dataset.mat").write_bytes(data)
        try:
            names, labels, _ = read_labels(tmp)
        except UserError:
            return
        cells = scipy.io.loadmat(os.path.join(tmp, "dataset.mat"))["labels"]  # what survived
        assert len(set(names)) == len(names) <= len(cells)
        assert labels.shape == (len(names), 107) and np.isfinite(labels).all()


# ---------------------------------------------------------------------------- images, masks
@pytest.fixture(scope="module")
def image_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("png") / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (12, 8, 3), np.uint8)).save(path)
    return path.read_bytes()


@FUZZ
@given(which=st.sampled_from(["image", "mask"]), **CORRUPTION)
def test_image_and_mask_corruptions(image_bytes, which, cut, flips):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for sub in ("images", "masks"):
            (root / sub).mkdir()
            for i in range(2):
                (root / sub / f"{i}.png").write_bytes(image_bytes)
        (root / which.replace("image", "images").replace("mask", "masks") / "1.png"
         ).write_bytes(_corrupt(image_bytes, cut, flips))
        (root / "dataset.json").write_text(json.dumps(
            {"labels": {f"images/{i}.png": ROW for i in range(2)}}))
        try:
            ds = HumanImageFolder(root, 8)
            assert len(ds) == 2
            for i in range(2):
                img, _label = ds[i]
                assert img.shape == (3, 8, 8) and bool(((img >= -1) & (img <= 1)).all())
        except UserError:
            pass


# -------------------------------------------------------------------------- meshes, poses
OBJ = (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n"
       b"f 1/1 2/2 3/3\nf 2/2 4/4 3/3\nf 1/1 2/2 4/4 3/3\n")


@FUZZ
@given(**CORRUPTION)
def test_obj_corruptions(cut, flips):
    data = _corrupt(OBJ, cut, flips)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.obj"
        path.write_bytes(data)
        try:
            mesh = read_obj(path)
        except UserError:
            return
        # every surviving f line became len(corners) - 2 triangles, nothing silently dropped
        lines = [ln.split() for ln in data.decode("utf-8").splitlines()]
        triangles = sum(len(p) - 3 for p in lines if p and p[0] == "f")
        assert mesh["f"].shape == (triangles, 3) == mesh["ft"].shape
        assert int(mesh["f"].max()) < len(mesh["v"]) and int(mesh["ft"].max()) < len(mesh["vt"])


@pytest.fixture(scope="module")
def npy_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("npy") / "seq.npy"
    np.save(path, np.linspace(0, 3, 63, dtype=np.float32).reshape(21, 3))
    return path.read_bytes()


@FUZZ
@given(**CORRUPTION)
def test_pose_npy_corruptions(npy_bytes, cut, flips):
    data = _corrupt(npy_bytes, cut, flips)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "seq.npy"
        path.write_bytes(data)
        try:
            seq = load_pose_sequence(path)
        except UserError:
            return
        assert seq.shape[1] in (3, 69, 72) and seq.shape[0] >= 1
        assert seq.numel() * 4 <= len(data)  # every returned value was read from the file
