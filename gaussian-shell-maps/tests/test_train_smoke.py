import json

import pytest
import torch
from conftest import SMALL, TINY

from gaussian_shell_maps.config import parse_config
from gaussian_shell_maps.engine import build_dataset, build_models, fit, make_optimizers, train_step
from gaussian_shell_maps.runtime import load_checkpoint, read_metrics


def test_fit_writes_run_folder_and_resume_matches_uninterrupted(tmp_path):
    args = ["--config", TINY, *SMALL, "--r1_interval", "2"]
    full = fit(parse_config([*args, "--steps", "3", "--out_dir", str(tmp_path / "full")]))
    part = tmp_path / "part"
    fit(parse_config([*args, "--steps", "2", "--out_dir", str(part)]))
    resumed = fit(parse_config([*args, "--steps", "3", "--out_dir", str(part)]))
    assert (part / "config.json").is_file() and (part / "metrics.jsonl").is_file()
    assert json.loads((part / "config.json").read_text())["num_gaussians"] == 200
    a = load_checkpoint(tmp_path / "full" / "ckpt" / "last.pt")
    b = load_checkpoint(part / "ckpt" / "last.pt")
    assert a["step"] == b["step"] == 3
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], msg=k)
    assert resumed["loss_d"] == pytest.approx(full["loss_d"], rel=1e-5)
    steps = [r["step"] for r in read_metrics(part)]
    assert 2 in steps


def test_few_gan_steps_separate_discriminator_outputs(tmp_path):
    torch.manual_seed(0)
    cfg = parse_config(["--config", TINY, *SMALL, "--blur_init_sigma", "0", "--g_lr", "0",
                        "--r1_gamma", "0"])
    template, gen, gen_ema, disc = build_models(cfg, torch.device("cpu"))
    data = build_dataset(cfg, template)
    opt_g, opt_d = make_optimizers(cfg, gen, disc)
    real, label = data.images[:4], data.labels[:4]
    first = train_step(cfg, 0, gen, gen_ema, disc, opt_g, opt_d, real, label, label)
    for step in range(1, 6):
        last = train_step(cfg, step, gen, gen_ema, disc, opt_g, opt_d, real, label, label)
    gap0 = first["d_real"] - first["d_fake"]
    gap = last["d_real"] - last["d_fake"]
    assert gap > gap0 + 0.5 and last["d_real"] > last["d_fake"], (first, last)


def test_non_finite_loss_raises(tmp_path):
    cfg = parse_config(["--config", TINY, *SMALL, "--g_lr", "1e30", "--steps", "3",
                        "--out_dir", str(tmp_path)])
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(cfg)
