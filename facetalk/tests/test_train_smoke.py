import json

import pytest
import torch

from facetalk import engine
from facetalk.config import parse_config
from facetalk.data import make_sequences, sample_batch
from facetalk.diffusion import make_scheduler
from facetalk.engine import _load_into, fit, generate, load_model, loss_terms
from facetalk.head import build_head
from facetalk.model import build_model


def test_tiny_overfit_lowers_diffusion_loss(tiny_cfg):
    """One fixed batch, fixed (t, noise): the x0-prediction loss must fall well below its start."""
    torch.manual_seed(0)
    cfg = tiny_cfg
    model = build_model(cfg)
    seqs = make_sequences(cfg, "train")
    engine._set_code_stats(model, seqs)
    batch = sample_batch(seqs, 4, 16, 16000, 25, torch.Generator().manual_seed(0))
    head = build_head("procedural", cfg.data_id_dim, cfg.data_exp_dim, 10)
    sched = make_scheduler("ddpm", cfg.diff_train_steps, cfg.diff_beta_schedule, "sample")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        terms = loss_terms(model, sched, batch, cfg, head, torch.Generator().manual_seed(5))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["simple"].detach()))
    assert losses[-1] < 0.2 * losses[0], (losses[0], losses[-1])


def test_resume_reproduces_uninterrupted_run(tiny_args, tmp_path):
    fit(parse_config(tiny_args + ["--steps", "4", "--out_dir", str(tmp_path / "a")]))
    fit(parse_config(tiny_args + ["--steps", "2", "--out_dir", str(tmp_path / "b")]))
    fit(parse_config(tiny_args + ["--steps", "4", "--out_dir", str(tmp_path / "b")]))
    a = torch.load(tmp_path / "a/ckpt/last.pt", weights_only=True)
    b = torch.load(tmp_path / "b/ckpt/last.pt", weights_only=True)
    assert a["step"] == b["step"] == 4
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], msg=k)
    records = [json.loads(x) for x in (tmp_path / "b/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4]


def test_non_finite_loss_raises(tiny_args, tmp_path, monkeypatch):
    def nan_terms(*args, **kwargs):
        x = torch.tensor(float("nan"), requires_grad=True)
        return {"loss": x, "simple": x}

    monkeypatch.setattr(engine, "loss_terms", nan_terms)
    with pytest.raises(FloatingPointError, match="simple"):
        fit(parse_config(tiny_args + ["--steps", "2", "--out_dir", str(tmp_path)]))


def test_checkpoint_round_trip_and_architecture_mismatch(tiny_args, tmp_path):
    cfg = parse_config(tiny_args + ["--steps", "1", "--out_dir", str(tmp_path)])
    fit(cfg)
    model, loaded_cfg = load_model(tmp_path / "ckpt/last.pt")
    assert loaded_cfg == cfg
    other = build_model(parse_config(tiny_args + ["--model_dim", "48"]))
    with pytest.raises(ValueError, match="different architecture"):
        _load_into(other, tmp_path / "ckpt/last.pt")
    torch.save({"format_version": 1, "model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a facetalk checkpoint"):
        _load_into(model, tmp_path / "foreign.pt")


def test_regression_baseline_is_deterministic_diffusion_is_not(tiny_args, tmp_path):
    for method in ("regression", "diffusion"):
        cfg = parse_config(tiny_args + ["--steps", "2", "--method", method,
                                        "--out_dir", str(tmp_path / method)])
        fit(cfg)
        model, cfg = load_model(tmp_path / method / "ckpt/last.pt")
        wave, z_id = torch.randn(16000), torch.zeros(cfg.data_id_dim)
        codes = generate(model, cfg, wave, z_id, frames=25, num_samples=3)
        assert codes.shape == (3, 25, cfg.data_exp_dim)
        spread = float((codes[0] - codes[1]).abs().max())
        assert (spread == 0.0) if method == "regression" else (spread > 1e-3)


def test_lip_term_and_epsilon_target_paths(tiny_args):
    """Optional lip-vertex loss (decoded procedural head) and epsilon prediction both train."""
    cfg = parse_config(tiny_args + ["--loss_lip_weight", "1.0", "--diff_prediction", "epsilon"])
    torch.manual_seed(0)
    model = build_model(cfg)
    seqs = make_sequences(cfg, "train")
    engine._set_code_stats(model, seqs)
    batch = sample_batch(seqs, 2, 16, 16000, 25, torch.Generator().manual_seed(0))
    head = build_head("procedural", cfg.data_id_dim, cfg.data_exp_dim, 10)
    sched = make_scheduler("ddpm", cfg.diff_train_steps, cfg.diff_beta_schedule, "epsilon")
    terms = loss_terms(model, sched, batch, cfg, head, torch.Generator().manual_seed(0))
    assert {"loss", "simple", "vel", "lip"} <= set(terms) and torch.isfinite(terms["lip"])
    terms["loss"].backward()
    assert model.denoiser.exp_in.weight.grad.abs().sum() > 0
