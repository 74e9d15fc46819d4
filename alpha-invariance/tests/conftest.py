"""Shared fixtures: tiny config, CPU device, local generators."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"

torch.set_num_threads(1)  # OpenMP spin-waits badly on a shared, oversubscribed CPU


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def tiny_argv(tmp_path) -> list[str]:
    """Tiny-but-faster run: few views, small images, few steps."""
    return ["--config", str(TINY), "--data_image_size", "12", "--data_num_train_views", "4",
            "--data_num_test_views", "1", "--model_num_samples", "16", "--model_grid_res", "12",
            "--batch_rays", "64", "--steps", "3", "--out_dir", str(tmp_path / "run")]
