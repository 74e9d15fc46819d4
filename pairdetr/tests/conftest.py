"""Shared fixtures: a tiny config (few queries, 1-2 layers, small images) and an RNG."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from pairdetr.config import load_config

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"

torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg():
    """configs/tiny.toml shrunk further for unit tests."""
    cfg = load_config(TINY)
    return dataclasses.replace(cfg, data_num_train=4, data_num_val=2, model_dim=32,
                               model_ffn_dim=32, model_heads=2, model_num_queries=8,
                               model_backbone_width=8, data_image_size=64, data_max_size=80,
                               eval_height_scale=0.2, log_every=1, save_every=2, steps=3,
                               batch_size=2, device="cpu")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def device():
    import os

    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))
