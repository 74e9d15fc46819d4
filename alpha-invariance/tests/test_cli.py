"""CLI round trip: train.main -> eval.main; checkpoints from another architecture fail clearly."""

from __future__ import annotations

import importlib.util
import json

import pytest

from .conftest import ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_then_eval(tiny_argv, tmp_path):
    result = _load("train").main(tiny_argv)
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (run / name).is_file(), name
    assert result["psnr"] > 0
    report = _load("eval").main(["--ckpt", str(run / "ckpt" / "last.pt")])
    for key in ("psnr", "ssim", "lpips", "init_T_mean", "depth_abs_rel"):
        assert key in report, key
    assert "random" in report["lpips_backbone"]
    saved = json.loads((run / "eval" / "test.json").read_text())
    assert saved["psnr"] == pytest.approx(report["psnr"])
    assert (run / "eval" / "renders.png").is_file()


def test_other_architecture_checkpoint_fails(tiny_argv, tmp_path):
    from alpha_invariance.config import parse_config
    from alpha_invariance.engine import fit

    fit(parse_config(tiny_argv))
    with pytest.raises(ValueError, match="dvgo"):
        fit(parse_config(tiny_argv + ["--model_family", "plenoxels"]))
