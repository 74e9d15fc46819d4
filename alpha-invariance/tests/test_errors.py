"""The probe every CLI must pass (issue 23): one line `error: ...`, exit 2, --debug traceback."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alpha_invariance.runtime import UserError, cli

from .conftest import ROOT, TINY


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_{name}_script", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _probe(capsys, main, argv: list[str]) -> str:
    """Run through cli(); assert exit 2 and exactly one stderr line starting 'error: '."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli(main, argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "weights_only" not in err
    return lines[0]


@pytest.fixture(scope="module")
def real_ckpt(tmp_path_factory) -> str:
    from alpha_invariance.config import parse_config
    from alpha_invariance.engine import fit

    out = tmp_path_factory.mktemp("probe") / "run"
    fit(parse_config(["--config", str(TINY), "--data_image_size", "8",
                      "--data_num_train_views", "2", "--data_num_test_views", "1",
                      "--model_num_samples", "8", "--model_grid_res", "8", "--batch_rays", "16",
                      "--steps", "2", "--out_dir", str(out)]))
    return str(out / "ckpt" / "last.pt")


def test_bad_key(capsys):
    line = _probe(capsys, _script("train").main, ["--config", str(TINY), "--no_such_key", "1"])
    assert "no_such_key" in line and "valid keys" in line


def test_missing_data_root(capsys, tmp_path):
    line = _probe(capsys, _script("train").main,
                  ["--config", str(TINY), "--data_kind", "blender", "--data_root", "/nonexistent",
                   "--out_dir", str(tmp_path / "r")])
    assert "data_root not found: /nonexistent" in line


def test_bad_value_and_unwritable_out_dir(capsys, tmp_path):
    _probe(capsys, _script("train").main, ["--config", str(TINY), "--steps", "many"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _probe(capsys, _script("train").main,
                  ["--config", str(TINY), "--out_dir", str(blocker / "run")])
    assert "cannot write the run folder" in line


def test_missing_checkpoint(capsys):
    line = _probe(capsys, _script("eval").main, ["--ckpt", "/nonexistent/last.pt"])
    assert line.startswith("error: checkpoint not found: /nonexistent/last.pt")


def test_text_file_as_checkpoint(capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a checkpoint\n")
    line = _probe(capsys, _script("eval").main, ["--ckpt", str(notes)])
    assert line.startswith("error: not a readable checkpoint of alpha-invariance: ")


def test_truncated_checkpoint(capsys, tmp_path, real_ckpt):
    raw = Path(real_ckpt).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(raw[: len(raw) // 2])
    line = _probe(capsys, _script("eval").main, ["--ckpt", str(cut)])
    assert line.startswith("error: not a readable checkpoint of alpha-invariance: ")


def test_eval_bad_flag(capsys, real_ckpt):
    _probe(capsys, _script("eval").main, ["--ckpt", real_ckpt, "--num_views", "two"])


def test_debug_shows_the_traceback(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    with pytest.raises(UserError):
        cli(_script("eval").main, ["--ckpt", str(notes), "--debug"])


def test_programming_errors_still_raise():
    def main(argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli(main, [])


def test_real_subprocess_exit_status(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, str(ROOT / "eval.py"), "--ckpt", str(notes)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        (f"error: not a readable checkpoint of alpha-invariance: {notes} "
         "(not a torch checkpoint, or it holds objects that safe loading refuses)")]


def test_ssim_on_images_smaller_than_its_window():
    """Found by the probe's 8 px run: SSIM's 11 px window failed on smaller eval crops."""
    import torch

    from alpha_invariance.metrics import ssim

    x = torch.rand(8, 8, 3, generator=torch.Generator().manual_seed(0))
    assert ssim(x, x) == pytest.approx(1.0)
    assert ssim(x, 1 - x) < 0.5


def test_eval_main_raises_checkpoint_errors(tmp_path, real_ckpt):
    """main() itself raises (cli() turns it into the one line)."""
    from alpha_invariance.runtime import CheckpointError

    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(Path(real_ckpt).read_bytes()[:1000])
    for ckpt in (notes, cut, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError):
            _script("eval").main(["--ckpt", str(ckpt)])


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the no-CUDA branch")
def test_bench_gpu_without_cuda(capsys, tmp_path):
    result = _script("bench").main(["--gpu", "--json", str(tmp_path / "b.json")])
    assert result == {} and "no CUDA: GPU figures skipped" in capsys.readouterr().out
    assert not (tmp_path / "b.json").exists()
