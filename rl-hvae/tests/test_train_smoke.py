import json
import math

import pytest
import torch

from conftest import SMALL, TINY
from rl_hvae.config import parse_config
from rl_hvae.data import batch_indices, binarize, load_digits_split
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


@pytest.mark.parametrize("method, arch", [("rl", "released"), ("free_bits", "released"),
                                          ("rl", "intended")])
def test_fit_writes_run_folder(tmp_path, method, arch):
    out = tmp_path / method
    res = fit(parse_config(["--config", TINY, *SMALL, "--method", method, "--steps", "5",
                            "--arch_skips", arch, "--free_nats", "2", "--free_nats_steps", "4",
                            "--out_dir", str(out)]))
    assert (out / "config.json").is_file() and (out / "ckpt" / "last.pt").is_file()
    assert json.loads((out / "config.json").read_text())["arch_skips"] == arch
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


def test_quick_eval_leaves_the_training_rng_untouched(tiny_cfg, monkeypatch):
    """Issue 24: evaluation reseeds inside fork_rng, so the generators that draw the training
    latents continue as if it had not run. CPU: the global state is bit-identical afterwards.
    CUDA (shown without a GPU): the fork covers every CUDA device once CUDA is initialised."""
    from rl_hvae import evaluation, runtime

    data = load_digits_split("val")
    torch.manual_seed(123)
    model = build_model(tiny_cfg, data)
    model.data_init(binarize(data.images[:32], 0))
    before = torch.get_rng_state()
    evaluation.quick_eval(model, data, tiny_cfg, torch.device("cpu"), max_examples=16)
    assert torch.equal(before, torch.get_rng_state())
    seen = []
    real_fork = torch.random.fork_rng

    def recording_fork(devices=None, **kw):
        seen.append(list(devices))
        return real_fork(devices=[], **kw)  # no CUDA here: fork the CPU state only

    monkeypatch.setattr(torch.random, "fork_rng", recording_fork)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runtime.cuda_rng_devices() == [0, 1]
    monkeypatch.setattr(torch, "manual_seed", lambda s: None)  # CUDA seeding would fail here
    evaluation.quick_eval(model, data, tiny_cfg, torch.device("cpu"), max_examples=4)
    assert seen == [[0, 1]]


def test_cached_binarisation_is_fixed_per_image_and_fresh_is_not():
    from rl_hvae.engine import _batch, train_images

    data = load_digits_split("train")
    for mode, same in (("cached", True), ("fresh", False)):
        cfg = parse_config(["--config", TINY, *SMALL, "--method", "hvae",
                            "--data_binarization", mode])
        x = train_images(data, cfg)
        per_epoch = len(data) // cfg.batch_size
        first = {}
        for step in (0, per_epoch, 2 * per_epoch):  # the first batch of three epochs
            idx = batch_indices(len(data), cfg.batch_size, step, cfg.seed)
            batch = _batch(x, cfg, step, 5)
            assert set(batch.unique().tolist()) <= {0.0, 1.0}
            for i, row in zip(idx.tolist(), batch):
                first.setdefault(i, []).append(row)
        repeated = [rows for rows in first.values() if len(rows) > 1]
        assert repeated, "no image drawn twice"
        assert all(torch.equal(r[0], r[1]) for r in repeated) == same, mode


def test_dist_backend_comes_from_the_environment(monkeypatch):
    from rl_hvae.distributed import dist_backend
    from rl_hvae.runtime import ConfigError

    monkeypatch.delenv("DIST_BACKEND", raising=False)
    assert dist_backend(use_cuda=True) == "nccl" and dist_backend(use_cuda=False) == "gloo"
    monkeypatch.setenv("DIST_BACKEND", "gloo")
    assert dist_backend(use_cuda=True) == "gloo"
    monkeypatch.setenv("DIST_BACKEND", "mpi-ish")
    with pytest.raises(ConfigError, match="DIST_BACKEND"):
        dist_backend(use_cuda=False)


def test_checkpoint_holds_rng_states_per_rank(tmp_path):
    fit(parse_config(["--config", TINY, *SMALL, "--steps", "2", "--out_dir", str(tmp_path)]))
    ckpt = torch.load(tmp_path / "ckpt/last.pt", weights_only=True)
    assert len(ckpt["rng_ranks"]) == 1 and set(ckpt["rng_ranks"][0]) == {"cpu"}  # CPU run


def test_released_metric_reads_the_top_latent_with_sampled_lower_levels(released_model,
                                                                       digits_batch):
    """The released features are the top posterior's means after *sampled* lower latents:
    they vary with the seed, unlike the means-passed-up features of our per-level probe."""
    from rl_hvae.evaluation import top_latent_features

    torch.manual_seed(0)
    a = top_latent_features(released_model, digits_batch)
    torch.manual_seed(1)
    b = top_latent_features(released_model, digits_batch)
    assert a.shape == (16, 8) and not (a == b).all()
    posteriors, _ = released_model.infer(digits_batch, use_mode=True)
    torch.manual_seed(0)
    post_sampled, _ = released_model.infer(digits_batch, use_mode=False)
    torch.testing.assert_close(torch.tensor(a), post_sampled[-1].mean)
    assert not torch.allclose(posteriors[-1].mean, post_sampled[-1].mean)


def test_bench_gpu_without_cuda_says_so(capsys, monkeypatch):
    import sys

    from conftest import ROOT

    sys.path.insert(0, ROOT)
    import bench

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--gpu", "--json", "/nonexistent/x.json"]) == {}
    assert capsys.readouterr().out.strip() == "no CUDA: GPU figures skipped"
