"""Property-based tests (issue 23): the config parser and every on-disk reader (DomainBed image
folders, teacher .pt, student_init .pt, run checkpoints) answer malformed input with a UserError
or a documented warning, never with another exception or a wrong count."""

from __future__ import annotations

import io
import string
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vl2v_adip.config import Config, _field_types, parse_config
from vl2v_adip.runtime import UserError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
KEYS = sorted(_field_types())
TEXT = st.text(alphabet=string.printable, max_size=12)


@FUZZ
@given(st.lists(st.tuples(st.one_of(st.sampled_from(KEYS), TEXT),
                          st.one_of(TEXT, st.integers(-5, 10**6).map(str),
                                    st.floats(allow_nan=True).map(str),
                                    st.sampled_from(["true", "0", "-1", "1e9", "nan", ""]))),
                max_size=4))
def test_parse_config_cli_pairs(pairs):
    argv = [x for key, value in pairs for x in (f"--{key}", value)]
    try:
        assert isinstance(parse_config(argv), Config)
    except UserError:
        pass


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS),
                       st.one_of(st.integers(-3, 10**4), st.floats(allow_nan=True), TEXT,
                                 st.booleans(), st.lists(TEXT, max_size=3),
                                 st.dictionaries(TEXT, st.integers(), max_size=2)),
                       max_size=5),
       st.binary(max_size=40))
def test_parse_config_toml_files(values, junk):
    import tempfile

    lines = []
    for k, v in values.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]\n" + "".join(f'"{kk}" = {vv}\n' for kk, vv in v.items()))
        elif isinstance(v, bool):
            lines.append(f"{k} = {str(v).lower()}")
        elif isinstance(v, (int, float)):
            lines.append(f"{k} = {v!r}".replace("nan", "nan").replace("inf", "inf"))
        else:
            lines.append(f"{k} = {v!r}".replace("'", '"'))
    with tempfile.TemporaryDirectory() as tmp:
        for body in ("\n".join(lines).encode(), junk):
            path = Path(tmp) / "c.toml"
            path.write_bytes(body)
            try:
                assert isinstance(parse_config(["--config", str(path)]), Config)
            except UserError:
                pass


# ------------------------------------------------------------------ DomainBed image folders
def _tiny_pacs(root: Path) -> list[Path]:
    from PIL import Image

    files = []
    for d in ("art_painting", "cartoon", "photo", "sketch"):
        for c, fmt in (("dog", "JPEG"), ("horse", "PNG")):
            folder = root / "PACS" / d / c
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / ("0.jpg" if fmt == "JPEG" else "0.png")
            Image.new("RGB", (12, 10), (40, 90, 160)).save(path, fmt)
            files.append(path)
    return files


@FUZZ
@given(st.integers(0, 7), st.floats(0, 1), st.binary(min_size=1, max_size=16),
       st.sampled_from(["truncate", "overwrite", "text"]))
def test_domainbed_loader_on_damaged_images(which, where, noise, how):
    """A damaged image file: load_domainbed still indexes every file (count checked); reading
    it gives pixels, a warning naming the truncated file, or a DataError naming it."""
    import tempfile

    from vl2v_adip.data import collate, load_domainbed

    with tempfile.TemporaryDirectory() as tmp:
        files = _tiny_pacs(Path(tmp))
        target = files[which]
        data = bytearray(target.read_bytes())
        cut = int(where * len(data))
        if how == "truncate":
            data = data[:cut]
        elif how == "overwrite":
            data[cut:cut + len(noise)] = noise
        else:
            data = bytearray(b"not an image at all\n")
        target.write_bytes(bytes(data))
        loaded = load_domainbed(tmp, "PACS", image_size=8)
        assert sum(len(e) for e in loaded.envs) == len(files)
        env, idx = divmod(which, 2)
        try:
            x, y, _ = collate(loaded, [(env, [idx])])
            assert x.shape == (1, 3, 8, 8) and torch.isfinite(x).all() and int(y[0]) == idx
        except UserError as err:
            assert str(target) in str(err)


@FUZZ
@given(st.sampled_from(["no_domain", "empty_class", "extra_class", "file_as_domain",
                        "stray_file"]), st.integers(0, 3))
def test_domainbed_loader_on_damaged_trees(damage, k):
    import shutil
    import tempfile

    from vl2v_adip.data import load_domainbed

    with tempfile.TemporaryDirectory() as tmp:
        _tiny_pacs(Path(tmp))
        domain = Path(tmp) / "PACS" / ("art_painting", "cartoon", "photo", "sketch")[k]
        if damage == "no_domain":
            shutil.rmtree(domain)
        elif damage == "empty_class":
            for f in (domain / "dog").iterdir():
                f.unlink()
        elif damage == "extra_class":
            (domain / "zebra").mkdir()
        elif damage == "file_as_domain":
            shutil.rmtree(domain)
            domain.write_text("x")
        else:  # a non-image file next to the images is ignored, as ImageFolder does
            (domain / "dog" / "notes.txt").write_text("x")
        try:
            data = load_domainbed(tmp, "PACS", image_size=8)
        except UserError as err:
            assert damage != "stray_file", err
            return
        assert damage == "stray_file" and sum(len(e) for e in data.envs) == 8


# ----------------------------------------------------------------- teacher / weights / ckpts
@pytest.fixture(scope="module")
def weight_files(tmp_path_factory):
    from vl2v_adip.components import STUDENT_INIT_KIND
    from vl2v_adip.model import SmallCNN
    from vl2v_adip.runtime import save_checkpoint
    from vl2v_adip.teacher import build_stand_in, save_teacher

    tmp = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    save_teacher(build_stand_in(["circle", "square"], [], 4, 8), tmp / "teacher.pt")
    torch.save({"kind": STUDENT_INIT_KIND, "width": 4, "state": SmallCNN(4).state_dict()},
               tmp / "student_init.pt")
    save_checkpoint(tmp / "last.pt", step=3, config={}, meta={}, model={"w": torch.ones(4)})
    return {name: (tmp / name).read_bytes() for name in ("teacher.pt", "student_init.pt",
                                                         "last.pt")}


def _read(name: str, path: Path):
    from vl2v_adip.components import build_backbone
    from vl2v_adip.runtime import load_checkpoint
    from vl2v_adip.teacher import load_teacher

    if name == "teacher.pt":
        return load_teacher(path)
    if name == "student_init.pt":
        return build_backbone(parse_config(["--student_width", "4"]), str(path))
    return load_checkpoint(path)


@FUZZ
@given(st.sampled_from(["teacher.pt", "student_init.pt", "last.pt"]), st.floats(0, 1),
       st.binary(min_size=1, max_size=32), st.booleans())
def test_weight_files_truncated_or_corrupted(weight_files, name, where, noise, truncate):
    """Teacher, student_init and checkpoint files: a truncation or a byte corruption gives a
    CheckpointError (UserError) or, when the damage misses everything that is checked, a
    loaded object; never torch's or pickle's own exception."""
    import tempfile

    data = bytearray(weight_files[name])
    cut = int(where * len(data))
    if truncate:
        data = data[:cut]
    else:
        data[cut:cut + len(noise)] = noise
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(bytes(data))
        try:
            _read(name, path)
        except UserError as err:
            assert "weights_only" not in str(err) and "\n" not in str(err)


def test_weight_readers_refuse_foreign_pickles(tmp_path):
    """A pickle holding an arbitrary object is refused by the safe loader in every reader."""
    import pickle

    for name in ("teacher.pt", "student_init.pt", "last.pt"):
        path = tmp_path / name
        buf = io.BytesIO()
        torch.save({"kind": "x", "obj": Path("/")}, buf, pickle_module=pickle)
        path.write_bytes(buf.getvalue())
        with pytest.raises(UserError):
            _read(name, path)
