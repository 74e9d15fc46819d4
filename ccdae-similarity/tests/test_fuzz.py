"""Property-based tests (hypothesis) of the config parser and the benchmark loaders: damaged
input gives a UserError (or loads with the right count), never a hang or an error from deep
inside csv/json/PIL/numpy (issue 23)."""

import csv
import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdae_similarity.config import Config, _field_types, load_config, parse_config
from ccdae_similarity.data import load_image, load_real_pairs
from ccdae_similarity.runtime import UserError

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = sorted(_field_types())
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS + ["bogus", "steps_", ""]), TEXT), max_size=4))
def test_parse_config_gives_config_or_user_error(pairs):
    argv = [x for k, v in pairs for x in (f"--{k}", v)]
    try:
        cfg = parse_config(argv)
    except UserError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(cfg, Config)


@FUZZ
@given(st.binary(max_size=200) | TEXT)
def test_toml_preset_bytes(tmp_path, content):
    path = tmp_path / "fuzz.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    try:
        cfg = load_config(path)
    except UserError:
        return
    assert isinstance(cfg, Config)


def _pairs_csv(n: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["a", "b", "score"])
    for i in range(n):
        w.writerow([f"red square {i}", f"blue circle {i}", f"{i / n:.3f}"])
    return buf.getvalue().encode()


def _damage(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data[: max(0, len(data) - cut)])
    for pos, val in flips:
        if out:
            out[pos % len(out)] = val
    return bytes(out)


def _valid_rows(data: bytes) -> int | None:
    """Rows a correct reader must return for `data`, or None when it must refuse the file."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""),
                                   quoting=csv.QUOTE_NONE))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows or any(k not in rows[0] for k in ("a", "b", "score")):
        return None
    for r in rows:
        if any(r.get(k) in (None, "") for k in ("a", "b", "score")):
            return None
        try:
            if not np.isfinite(float(r["score"])):
                return None
        except ValueError:
            return None
    return len(rows)


@FUZZ
@given(st.integers(1, 6), st.integers(0, 80),
       st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_pairs_csv_truncated_or_corrupted(tmp_path, n, cut, flips):
    data = _damage(_pairs_csv(n), cut, flips)
    (tmp_path / "pairs.csv").write_bytes(data)
    expected = _valid_rows(data)
    try:
        pairs = load_real_pairs("pairs_csv", tmp_path)
    except UserError:
        assert expected is None, "a readable file was refused"
        return
    assert expected is not None and len(pairs.a) == len(pairs.score) == expected


@FUZZ
@given(st.integers(0, 300), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                     max_size=3))
def test_karpathy_json_damaged(tmp_path, cut, flips):
    (tmp_path / "cxc").mkdir(exist_ok=True)
    (tmp_path / "coco").mkdir(exist_ok=True)
    (tmp_path / "cxc" / "sts_test.csv").write_text(
        "caption1,caption2,agg_score\n1.jpg:1,2.jpg:2,3.5\n")
    sentences = [{"sentid": i, "raw": f"caption {i}"} for i in (1, 2)]
    good = json.dumps({"images": [{"sentences": sentences}]}).encode()
    (tmp_path / "coco" / "dataset_coco.json").write_bytes(_damage(good, cut, flips))
    try:
        pairs = load_real_pairs("cxc_sts", tmp_path)
    except UserError:
        return
    assert len(pairs.a) == 1


@FUZZ
@given(st.integers(1, 400), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)),
                                     max_size=4))
def test_image_file_damaged(tmp_path, cut, flips):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.arange(16 * 16 * 3) % 255).astype(np.uint8).reshape(16, 16, 3)).save(
        buf, format="PNG")
    path = tmp_path / "x.png"
    path.write_bytes(_damage(buf.getvalue(), cut, flips))
    try:
        img = load_image(path, 8)
    except UserError:
        return
    assert img.shape == (3, 8, 8) and bool(img.isfinite().all())


def test_missing_root_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="data_root"):
        load_real_pairs("stsb", tmp_path / "nope")
