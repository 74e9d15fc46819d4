"""Property-based tests (hypothesis) of the config parser and the NPHM-layout loader: damaged
files give a UserError (or load correctly), never a hang or an error from deep inside
numpy/scipy (issue 23)."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.io import wavfile

from facetalk.config import Config, _field_types, load_config, parse_config
from facetalk.data import load_nphm_talk
from facetalk.runtime import UserError

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
KEYS = sorted(_field_types())
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
SR, FPS, EXP, ID = 16000, 25, 8, 4
DAMAGE = st.tuples(st.integers(0, 400), st.lists(st.tuples(st.integers(0, 100_000),
                                                           st.integers(0, 255)), max_size=4))


def _damage(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data[: max(0, len(data) - cut)])
    for pos, val in flips:
        if out:
            out[pos % len(out)] = val
    return bytes(out)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(KEYS + ["bogus", ""]), TEXT), max_size=4))
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
        assert isinstance(load_config(path), Config)
    except UserError:
        pass


def _layout(root, frames: int = 60) -> dict[str, bytes]:
    """One subject with two sequences in the paper's layout; returns each file's bytes."""
    rng = np.random.default_rng(0)
    files = {}
    buf = io.BytesIO()
    np.save(buf, rng.normal(size=ID).astype(np.float32))
    files["s0/identity.npy"] = buf.getvalue()
    for seq in ("a", "b"):
        buf = io.BytesIO()
        np.save(buf, rng.normal(size=(frames, EXP)).astype(np.float32))
        files[f"s0/{seq}/expression_codes.npy"] = buf.getvalue()
        buf = io.BytesIO()
        wavfile.write(buf, SR, (0.1 * rng.normal(size=frames * SR // FPS)).astype(np.float32))
        files[f"s0/{seq}/audio.wav"] = buf.getvalue()
    files["splits/train.txt"] = b"s0/a\ns0/b\n"
    return files


@FUZZ
@given(st.sampled_from(["s0/identity.npy", "s0/a/expression_codes.npy", "s0/a/audio.wav",
                        "splits/train.txt"]), DAMAGE)
@pytest.mark.filterwarnings("ignore::scipy.io.wavfile.WavFileWarning")
def test_damaged_file_in_the_layout(tmp_path, victim, damage):
    files = _layout(tmp_path)
    files[victim] = _damage(files[victim], *damage)
    root = tmp_path / "data"
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    try:
        seqs = load_nphm_talk(root, "train", SR, FPS, EXP, ID)
    except UserError:
        return
    listed = [ln.strip() for ln in files["splits/train.txt"].decode("utf-8", "replace")
              .splitlines() if ln.strip()]
    assert len(seqs) == len(listed)
    for seq in seqs:
        assert np.all(np.isfinite(seq.codes)) and np.all(np.isfinite(seq.audio))
        assert seq.codes.shape[1] == EXP and seq.id_code.shape == (ID,)
