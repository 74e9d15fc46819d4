"""Shared fixtures: a very small config (32 px inputs, 5 blocks of width 32) for fast CPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pathdino.config import Config, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)

TEST_OVERRIDES = {
    "data_source_size": 48, "data_num_train": 16, "data_num_eval_per_class": 5,
    "data_num_classes": 4, "data_num_slides": 4, "data_slide_size": 256, "model_img_size": 32,
    "model_patch_size": 8, "model_embed_dim": 32, "model_num_heads": 2, "head_out_dim": 64,
    "head_hidden_dim": 64, "head_bottleneck_dim": 16, "global_crop_size": 32,
    "local_crop_size": 16, "local_crops_number": 2, "batch_size": 4, "steps": 4,
    "warmup_steps": 1, "log_every": 1, "eval_every": 0, "save_every": 100,
    "eval_rotation_angles": 4, "eval_rotation_patches": 8, "fps_num_patches": 6,
    "fps_patch_size": 32, "fps_thumbnail_size": 128, "device": "cpu",
}


@pytest.fixture
def tiny_cfg(tmp_path) -> Config:
    base = load_config(ROOT / "configs" / "tiny.toml")
    values = {**base.__dict__, **TEST_OVERRIDES, "out_dir": str(tmp_path / "run")}
    return config_from_dict(values)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))
