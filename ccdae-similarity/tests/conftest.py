"""Shared fixtures: a tiny config, a random-init system, and a fake closed-form modality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ccdae_similarity import world
from ccdae_similarity.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg():
    return parse_config(["--config", str(ROOT / "configs" / "tiny.toml"), "--image_size", "16",
                         "--model_dim", "32", "--unet_channels", "16,32",
                         "--diffusion_steps", "20", "--elbo_timesteps", "3",
                         "--ccdae_samples", "2", "--eval_pairs_per_level", "1",
                         "--eval_motivating_pairs", "1", "--eval_triplets", "2"])


@pytest.fixture
def tiny_system(tiny_cfg):
    from ccdae_similarity.engine import build_system

    torch.manual_seed(0)
    return build_system(tiny_cfg).eval()


class FakeModality:
    """Closed-form stand-in: samples are scene graphs, the describer is the grammar itself
    (deterministic), and l(x|h) = number of description words that contradict x's words
    (+0.5 per word for being described at all, an x-independent term that must cancel).
    Then d_c(x1, x2) = number of differing levels among the first c."""

    def __init__(self, graphs, empty_at: int | None = None):
        self.graphs = list(graphs)
        self.empty_at = empty_at
        self.calls = 0

    def describe(self, idx, budget, n, temperature, seed):
        if budget == self.empty_at:
            return [[() for _ in range(n)] for _ in idx]
        return [[tuple(world.describe(self.graphs[i], budget)) for _ in range(n)] for i in idx]

    def nll(self, idx, descs):
        self.calls += 1
        out = []
        for i, h in zip(idx, descs):
            words = world.graph_words(self.graphs[i])
            out.append(sum(w != words[k] for k, w in enumerate(h)) + 0.5 * len(h))
        return np.asarray(out, dtype=np.float64)

    def desc_logprob(self, idx, descs, budget):
        return -self.nll(idx, descs)


@pytest.fixture
def fake_modality():
    rng = np.random.default_rng(0)
    return FakeModality([world.random_graph(rng) for _ in range(6)])
