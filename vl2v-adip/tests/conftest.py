"""Shared fixtures: a very small synthetic configuration (seconds on CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"

# overrides that shrink configs/tiny.toml to a few seconds
FAST = ["--synth_per_domain", "30", "--teacher_pretrain_per_domain", "20",
        "--teacher_pretrain_steps", "3", "--student_pretrain_steps", "3", "--align_steps", "2",
        "--steps", "3", "--batch_size", "4", "--eval_every", "2", "--log_every", "1",
        "--save_every", "2", "--teacher_width", "8", "--teacher_embed_dim", "16",
        "--student_width", "8"]


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture
def rng() -> torch.Generator:
    return torch.Generator().manual_seed(0)


@pytest.fixture
def tiny_argv(tmp_path) -> list[str]:
    return ["--config", str(TINY), *FAST, "--out_dir", str(tmp_path / "run")]
