"""Shared fixtures: a very small config so the suite runs in seconds on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TEST_ARGS = [
    "--config", str(ROOT / "configs" / "tiny.toml"),
    "--data_exp_dim", "8", "--data_id_dim", "4", "--data_num_identities", "2",
    "--data_num_sequences", "6", "--data_seconds", "2.0", "--data_clip_frames", "16",
    "--audio_hidden", "16", "--audio_layers", "1", "--model_dim", "32", "--model_layers", "1",
    "--model_ff", "64", "--batch_size", "4", "--diff_sample_steps", "4", "--eval_sequences", "1",
    "--eval_samples", "2", "--head_resolution", "10", "--log_every", "1", "--lr_warmup", "1",
]


@pytest.fixture
def tiny_args() -> list[str]:
    return list(TEST_ARGS)


@pytest.fixture
def tiny_cfg():
    from facetalk.config import parse_config

    return parse_config(TEST_ARGS)


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)
