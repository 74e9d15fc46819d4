import json
import sys
from pathlib import Path

import pytest
import torch

from conftest import ROOT, SMALL, TINY
from eye_radiance.config import load_config, parse_config
from eye_radiance.data import load_sequence
from eye_radiance.engine import EyeModel, fit, train_step

sys.path.insert(0, ROOT)
import eval as eval_cli  # noqa: E402
import train as train_cli  # noqa: E402


def test_tiny_overfit_lowers_photometric_loss(small_sequence):
    cfg = parse_config(["--config", TINY, *SMALL, "--batch_rays", "256"])
    torch.manual_seed(0)
    data = load_sequence(small_sequence)
    model = EyeModel(cfg, 3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, eps=1e-15)
    gen = torch.Generator().manual_seed(0)
    losses = [train_step(model, opt, data, s, cfg, gen)["recon"] for s in range(80)]
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:5]) / 5, (losses[:5], losses[-10:])


def test_every_parameter_gets_a_finite_gradient(small_sequence):
    cfg = parse_config(["--config", TINY, *SMALL])
    data = load_sequence(small_sequence)
    model = EyeModel(cfg, 3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(model, opt, data, 5, cfg, torch.Generator().manual_seed(0))
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_train_eval_round_trip_and_resume(tmp_path, small_sequence):
    args = ["--config", TINY, *SMALL, "--data_root", str(small_sequence)]
    res = train_cli.main([*args, "--steps", "3", "--out_dir", str(tmp_path / "a")])
    for name in ("config.json", "metrics.jsonl", "ckpt/last.pt"):
        assert (tmp_path / "a" / name).is_file(), name
    assert res["steps"] == 3
    out = eval_cli.main(["--ckpt", str(tmp_path / "a/ckpt/last.pt")])
    saved = json.loads((tmp_path / "a/eval/eval.json").read_text())
    assert saved["psnr"] == pytest.approx(out["psnr"]) and "pose_axis_err_deg" in saved
    for fig in ("scene_views.png", "iris_texture.png", "pose_refinement.png"):
        assert (tmp_path / "a/eval" / fig).stat().st_size > 1000
    # resume: 3 + 2 steps equals 5 uninterrupted steps
    train_cli.main([*args, "--steps", "5", "--out_dir", str(tmp_path / "a")])
    train_cli.main([*args, "--steps", "5", "--out_dir", str(tmp_path / "b")])
    a = torch.load(tmp_path / "a/ckpt/last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "b/ckpt/last.pt", weights_only=True)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_bad_config_and_checkpoint(tmp_path, small_sequence):
    with pytest.raises(ValueError, match="valid keys"):
        parse_config(["--bogus", "1"])
    with pytest.raises(ValueError, match="data_on_bad_frame"):
        parse_config(["--data_on_bad_frame", "ignore"])
    args = [
        "--config",
        TINY,
        *SMALL,
        "--data_root",
        str(small_sequence),
        "--out_dir",
        str(tmp_path),
    ]
    fit(parse_config([*args, "--steps", "1"]))
    with pytest.raises(ValueError, match="another model/data config"):
        fit(parse_config([*args, "--steps", "2", "--field_hidden", "16"]))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        eval_cli.main(["--ckpt", str(bad)])


def test_presets_parse():
    assert load_config(TINY).steps == 300
    assert load_config(Path(TINY).with_name("paper.toml")).field_num_levels == 16
