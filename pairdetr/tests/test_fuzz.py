"""Property-based tests (issue 23): the config parser and the annotation loaders either work or
say what is wrong in one line (UserError); a malformed .odgt line is a documented skip (a warning
naming the file and line). Never another exception, never a silently wrong count."""

import json
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pairdetr.config import Config, _field_types, parse_config
from pairdetr.data import load_annotation_file, load_crowdhuman_odgt
from pairdetr.runtime import UserError

SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
KEYS = sorted(_field_types())

# ------------------------------------------------------------------ config parser

toml_values = st.one_of(
    st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=True).map(
        lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))),
    st.booleans().map(lambda b: str(b).lower()), st.text(max_size=8).map(json.dumps),
    st.lists(st.integers(-5, 2000), max_size=3).map(str), st.just("{a = 1}"),
    st.just("[[1], 2]"), st.just("1979-05-27"))


@settings(SETTINGS, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(KEYS + ["bogus", "model.dim", "data-root"]),
                          toml_values), max_size=6))
def test_parse_config_toml_is_config_or_user_error(tmp_path, pairs):
    path = tmp_path / "fuzz.toml"
    path.write_text("\n".join(f"{k} = {v}" for k, v in pairs) + "\n")
    try:
        assert isinstance(parse_config(["--config", str(path)]), Config)
    except UserError as err:
        assert "\n" not in str(err)


@SETTINGS
@given(st.binary(max_size=200))
def test_parse_config_random_bytes_as_toml(tmp_path, raw):
    path = tmp_path / "raw.toml"
    path.write_bytes(raw)
    try:
        assert isinstance(parse_config(["--config", str(path)]), Config)
    except UserError as err:
        assert "\n" not in str(err)


@SETTINGS
@given(st.lists(st.one_of(st.sampled_from([f"--{k}" for k in KEYS]), st.text(max_size=12)),
                max_size=8))
def test_parse_config_command_line_is_config_or_user_error(argv):
    try:
        assert isinstance(parse_config(argv), Config)
    except UserError as err:
        assert "\n" not in str(err)


# ------------------------------------------------------------------ annotation loaders

BFJDET = {
    "images": [{"id": 1, "file_name": "a_leftImg8bit.png", "width": 2048, "height": 1024},
               {"id": 2, "file_name": "b_leftImg8bit.png", "width": 2048, "height": 1024}],
    "annotations": [
        {"image_id": 1, "category_id": 1, "bbox": [959, 598, 40, 160], "f_bbox": [978, 603, 11, 14],
         "h_bbox": [977, 600, 19, 21], "vis_ratio": 0.95, "ignore": 0},
        {"image_id": 1, "category_id": 1, "bbox": [100, 500, 30, 120], "f_bbox": [1, 1, 1, 1],
         "h_bbox": [105, 502, 12, 14], "vis_ratio": 0.5, "ignore": 0},
        {"image_id": 2, "category_id": 1, "bbox": [10, 20, 30, 90], "f_bbox": [1, 1, 1, 1],
         "h_bbox": [1, 1, 1, 1], "vis_ratio": 0.2, "ignore": 1}]}
OFFICIAL = {"a_leftImg8bit": [[0, 0.375, 0.4355, 0.0493, 0.2393, 0.3804, 0.3446, 0.0088, 0.0195],
                              [1, 0.7314, 0.4229, 0.0537, 0.2617, 0.7347, 0.3154, 0.0204, 0.0389]],
            "273271,c9db000d5146c15": [[1, 0.5, 0.5, 0.2, 0.6, 0.5, 0.25, 0.05, 0.08]]}
ODGT = [{"ID": "273271,c9db000d5146c15", "gtboxes": [
            {"tag": "person", "fbox": [10, 20, 40, 100], "hbox": [20, 22, 14, 16],
             "vbox": [10, 20, 40, 50], "extra": {"ignore": 0}, "head_attr": {"ignore": 0}},
            {"tag": "mask", "fbox": [100, 0, 20, 20], "extra": {"ignore": 1}}]},
        {"ID": "x2", "gtboxes": []},
        {"ID": "x3", "gtboxes": [{"tag": "person", "fbox": [1, 2, 3, 4], "f_bbox": [2, 2, 2, 2]}]}]


@st.composite
def corrupted(draw, data: bytes) -> bytes:
    """A random truncation, byte replacement, insertion or deletion of `data`."""
    pos = draw(st.integers(0, len(data) - 1))
    kind = draw(st.sampled_from(["truncate", "replace", "insert", "delete"]))
    byte = bytes([draw(st.sampled_from(list(b'0123456789.-,:[]{}"\n eE') + [0, 200, 255]))])
    if kind == "truncate":
        return data[:pos]
    if kind == "replace":
        return data[:pos] + byte + data[pos + 1:]
    if kind == "insert":
        return data[:pos] + byte + data[pos:]
    return data[:pos] + data[pos + 1:]


def _persons(records) -> int:
    return sum(len(r.bodies) for r in records)


@SETTINGS
@given(corrupted(json.dumps(BFJDET).encode()))
def test_bfjdet_json_corrupted(tmp_path, raw):
    path = tmp_path / "instances_val_bhfmatch_new.json"
    path.write_bytes(raw)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "N annotations name no image" is a documented skip
            records, _ = load_annotation_file(path, tmp_path)
    except UserError as err:
        assert "\n" not in str(err)
        return
    data = json.loads(raw)  # the loader read it, so it parses: count independently
    if "images" not in data:  # the corruption produced the other (official) layout
        assert _persons(records) == sum(len(v) for v in data.values())
        return
    ids = {img["id"] for img in data["images"]}
    expected = sum(1 for a in data["annotations"]
                   if a.get("category_id", 1) == 1 and a["image_id"] in ids)
    assert len(records) == len(ids) and _persons(records) == expected


@SETTINGS
@given(corrupted(json.dumps(OFFICIAL).encode()))
def test_official_json_corrupted(tmp_path, raw):
    path = tmp_path / "valid_df_body_face_head_citypersons.json"
    path.write_bytes(raw)
    try:
        records, stats = load_annotation_file(path, tmp_path)
    except UserError as err:
        assert "\n" not in str(err)
        return
    data = json.loads(raw)
    assert len(records) == len(data)
    assert _persons(records) == sum(len(v) for v in data.values())
    assert stats["pairs"] == sum(row[0] == 0 for v in data.values() for row in v)


@SETTINGS
@given(corrupted(("\n".join(json.dumps(x) for x in ODGT) + "\n").encode()))
def test_odgt_corrupted(tmp_path, raw):
    """Every non-empty line is a record or a reported (warned) bad line; intact lines load as
    before; with skip_bad_lines = false a bad line is a UserError."""
    path = tmp_path / "annotation_val.odgt"
    path.write_bytes(raw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records, stats = load_crowdhuman_odgt(path, tmp_path, skip_bad_lines=True)
    lines = [line for line in raw.split(b"\n") if line.strip()]
    assert len(records) + len(stats["bad_lines"]) == len(lines)
    assert len(caught) == len(stats["bad_lines"])
    assert all("annotation_val.odgt:" in str(w.message) for w in caught)
    originals = {json.dumps(x).encode(): x for x in ODGT}
    by_id = {r.image_id: r for r in records}
    for line in lines:
        if line in originals:  # untouched line: loaded, with all its boxes
            item = originals[line]
            assert len(by_id[str(item["ID"])].bodies) == len(item["gtboxes"])
    if stats["bad_lines"]:
        with pytest.raises(UserError):
            load_crowdhuman_odgt(path, tmp_path, skip_bad_lines=False)
