import math

import pytest
import torch

from conftest import SMALL, TINY
from rl_hvae.config import parse_config
from rl_hvae.data import binarize, load_digits_split
from rl_hvae.engine import build_model, fit, train_step
from rl_hvae.runtime import read_metrics


def test_overfit_fixed_batch():
    """150 updates on one fixed batch of 32 digits: -ELBO falls below 55% of its start."""
    cfg = parse_config(["--config", TINY, *SMALL, "--method", "hvae", "--lr", "3e-3"])
    torch.manual_seed(0)
    data = load_digits_split("train")
    model = build_model(cfg, data)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x = binarize(data.images[:32], seed=0)
    losses = [train_step(model, opt, x, step, cfg)["loss"] for step in range(150)]
    assert losses[-1] < 0.55 * losses[0], (losses[0], losses[-1])


@pytest.mark.parametrize("method", ["rl", "free_bits"])
def test_fit_writes_run_folder(tmp_path, method):
    out = tmp_path / method
    res = fit(parse_config(["--config", TINY, *SMALL, "--method", method, "--steps", "5",
                            "--free_nats", "2", "--free_nats_steps", "4", "--out_dir", str(out)]))
    assert (out / "config.json").is_file() and (out / "ckpt" / "last.pt").is_file()
    records = read_metrics(out)
    assert [r["step"] for r in records if r["split"] == "train"] == [0, 1, 2, 3, 4]
    assert math.isfinite(res["val_elbo"]) and res["steps"] == 5


def test_resume_reproduces_uninterrupted_run(tmp_path):
    args = ["--config", TINY, *SMALL]
    fit(parse_config([*args, "--steps", "7", "--out_dir", str(tmp_path / "full")]))
    fit(parse_config([*args, "--steps", "3", "--out_dir", str(tmp_path / "split")]))
    fit(parse_config([*args, "--steps", "7", "--out_dir", str(tmp_path / "split")]))
    full = torch.load(tmp_path / "full/ckpt/last.pt", weights_only=True)
    split = torch.load(tmp_path / "split/ckpt/last.pt", weights_only=True)
    assert split["step"] == 7
    for k, v in full["model"].items():
        assert torch.equal(v, split["model"][k]), k


def test_checkpoint_from_other_architecture_is_refused(tmp_path):
    fit(parse_config(["--config", TINY, *SMALL, "--steps", "1", "--out_dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="another architecture.*model_channels"):
        fit(parse_config(["--config", TINY, *SMALL, "--model_channels", "16", "--steps", "2",
                          "--out_dir", str(tmp_path)]))


def test_nan_loss_stops_with_message():
    cfg = parse_config(["--config", TINY, *SMALL])
    data = load_digits_split("train")
    model = build_model(cfg, data)
    opt = torch.optim.Adam(model.parameters())
    x = data.images[:4].clone()
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        train_step(model, opt, x, 0, cfg)
