import dataclasses

import numpy as np
import pytest
import torch

from ccdae_similarity import data, engine, world
from ccdae_similarity.modalities import WorldImageModality


def test_tiny_overfit_describers(tiny_cfg):
    """One fixed batch, 60 steps: both describers' losses fall >= 5x."""
    torch.manual_seed(0)
    system = engine.build_system(tiny_cfg)
    batch = data.sample_world_batch(np.random.default_rng(0), 16, tiny_cfg.image_size, 0.0)
    dv, tv = data.description_vocab(), data.text_vocab()
    budgets = np.random.default_rng(0).integers(1, world.LEVELS + 1, size=16)
    dec_in, tgt = engine.describer_targets(batch.graphs, budgets, dv)
    sources = {"text_describer": data.text_ids(batch.texts, tv),
               "image_describer": batch.images}
    for name, source in sources.items():
        model = getattr(system, name)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        losses = []
        for _ in range(60):
            loss = model.nll(source, dec_in, tgt).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
        assert losses[-1] < losses[0] / 5, (name, losses[0], losses[-1])


def test_elbo_prefers_true_description_after_tiny_training(tiny_cfg):
    """After a short training of the conditional UNet, -ELBO(x | true description) is lower than
    -ELBO(x | description contradicting x at the coarsest level), on average and for most x."""
    torch.manual_seed(0)
    system = engine.build_system(tiny_cfg)
    lik, dv = system.image_likelihood, data.description_vocab()
    batch = data.sample_world_batch(np.random.default_rng(0), 16, tiny_cfg.image_size, 0.0)
    opt = torch.optim.Adam(lik.parameters(), lr=3e-3)
    for step in range(100):
        levels = np.random.default_rng(step).integers(0, world.LEVELS + 1, size=16)
        cond = data.condition_ids([tuple(world.describe(g, int(k)))
                                   for g, k in zip(batch.graphs, levels)], dv)
        loss = lik.loss(batch.images, cond, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    mod = WorldImageModality(system.eval(), batch.images, dv, elbo_timesteps=16,
                             elbo_weighting="uniform")
    true_h = [tuple(world.describe(g, 1)) for g in batch.graphs]
    wrong_h = [(world.LEVEL_VALUES[0][(g[0] + 2) % 4],) for g in batch.graphs]
    l_true, l_wrong = mod.nll(list(range(16)), true_h), mod.nll(list(range(16)), wrong_h)
    assert (l_wrong - l_true).mean() > 1.0, (l_true, l_wrong)
    assert np.mean(l_true < l_wrong) >= 0.6, (l_true, l_wrong)


def test_non_finite_loss_raises(tiny_cfg, tmp_path, monkeypatch):
    def bad_step(*args, **kwargs):
        return {"diffusion": torch.tensor(float("nan"), requires_grad=True)}

    monkeypatch.setattr(engine, "train_step", bad_step)
    cfg = dataclasses.replace(tiny_cfg, steps=1, out_dir=str(tmp_path))
    with pytest.raises(FloatingPointError, match="diffusion"):
        engine.fit(cfg)


def test_resume_reproduces_uninterrupted_run(tiny_cfg, tmp_path):
    base = dataclasses.replace(tiny_cfg, batch_size=4, log_every=1, save_every=100)
    engine.fit(dataclasses.replace(base, steps=4, out_dir=str(tmp_path / "full")))
    engine.fit(dataclasses.replace(base, steps=2, out_dir=str(tmp_path / "half")))
    engine.fit(dataclasses.replace(base, steps=4, out_dir=str(tmp_path / "half")))
    full = torch.load(tmp_path / "full" / "ckpt" / "last.pt", weights_only=True)["model"]
    half = torch.load(tmp_path / "half" / "ckpt" / "last.pt", weights_only=True)["model"]
    for k in full:
        torch.testing.assert_close(full[k], half[k], msg=k)
