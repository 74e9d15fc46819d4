import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_then_eval_round_trip(tmp_path):
    from conftest import TEST_OVERRIDES

    out = tmp_path / "run"
    argv = ["--config", str(ROOT / "configs" / "tiny.toml"), "--out_dir", str(out)]
    for key, value in {**TEST_OVERRIDES, "steps": 3}.items():
        argv += [f"--{key}", str(value)]
    result = _load("train").main(argv)
    assert result["step"] == 3
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (out / name).is_file(), name
    metrics = _load("eval").main(["--ckpt", str(out / "ckpt" / "last.pt")])
    for key in ("synthetic", "ihc"):
        assert 0.0 <= metrics["patch"][key]["knn_rotated_mv5_acc"] <= 1.0
    assert 1 <= metrics["wsi"]["fps"]["patches_per_slide"] <= 6
    assert metrics["wsi"]["exhaustive"]["patches_per_slide"] > 6
    saved = json.loads((out / "eval" / "metrics.json").read_text())
    assert saved["step"] == 3
    for png in ("attention.png", "fps_selection.png", "rotation_consistency.png"):
        assert (out / "eval" / png).stat().st_size > 1000, png


def test_checkpoint_from_other_architecture_is_rejected(tmp_path, tiny_cfg):
    from pathdino.engine import fit
    from pathdino.evaluation import evaluate
    from pathdino.runtime import load_checkpoint, save_checkpoint

    fit(tiny_cfg)
    ckpt = load_checkpoint(Path(tiny_cfg.out_dir) / "ckpt" / "last.pt")
    bad = dict(ckpt, config={**ckpt["config"], "model_embed_dim": 48})
    bad.pop("format_version")
    save_checkpoint(tmp_path / "x" / "ckpt" / "last.pt", **bad)
    with pytest.raises(ValueError, match="do not match"):
        evaluate(tmp_path / "x" / "ckpt" / "last.pt")
    other = dict(ckpt, arch="resnet")
    other.pop("format_version")
    save_checkpoint(tmp_path / "y" / "last.pt", **other)
    with pytest.raises(ValueError, match="arch"):
        evaluate(tmp_path / "y" / "last.pt")
    assert torch.is_tensor(ckpt["model"]["backbone.pos_embed"])
