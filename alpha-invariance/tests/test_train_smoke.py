"""fit(): run folder contents, resume == uninterrupted, NaN densities stop with model and step."""

from __future__ import annotations

import json

import pytest
import torch

from alpha_invariance.config import parse_config
from alpha_invariance.engine import fit, lr_factor
from alpha_invariance.runtime import load_checkpoint


def test_fit_writes_run_folder(tiny_argv, tmp_path):
    result = fit(parse_config(tiny_argv))
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / "ckpt" / "last.pt").is_file()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["split"] == "init" and 0.5 - 1e-3 <= records[0]["init_T_mean"] < 0.99
    assert records[-1]["split"] == "test" and result["psnr"] > 0


def test_resume_exact(tiny_argv, tmp_path):
    full = tiny_argv[:-1] + [str(tmp_path / "full"), "--steps", "4", "--save_every", "2"]
    fit(parse_config(full))
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")["model"]
    # interrupted copy: take the step-2 state of an identical run, then resume to 4
    part = tiny_argv[:-1] + [str(tmp_path / "part"), "--steps", "4", "--save_every", "2"]
    from alpha_invariance import engine

    class Stop(Exception):
        pass

    original = engine.train_step

    def stop_after_two(*args, **kwargs):
        if args[5] >= 2:  # the step argument
            raise Stop
        return original(*args, **kwargs)

    engine.train_step = stop_after_two
    try:
        with pytest.raises(Stop):
            fit(parse_config(part))
    finally:
        engine.train_step = original
    assert load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")["step"] == 2
    fit(parse_config(part))
    b = load_checkpoint(tmp_path / "part" / "ckpt" / "last.pt")["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], msg=key)


def test_nan_density_stops_with_model_and_step(tiny_argv, monkeypatch):
    from alpha_invariance import model as model_mod

    original = model_mod.DVGOField.forward

    def nan_forward(self, xn, dirs):
        raw, rgb = original(self, xn, dirs)
        return raw * float("nan"), rgb

    monkeypatch.setattr(model_mod.DVGOField, "forward", nan_forward)
    with pytest.raises(FloatingPointError, match=r"dvgo.*step 0"):
        fit(parse_config(tiny_argv))


def test_lr_schedule():
    assert lr_factor(0, 100, 0.1) == 1.0
    assert lr_factor(100, 100, 0.1) == pytest.approx(0.1)
