"""Shared fixtures: a very small synthetic config, device, Flower task identity."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from clap_vad.config import Config, parse_config

torch.set_num_threads(1)  # tiny models: threads only add contention on a shared CPU

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.toml"

# Smaller than configs/tiny.toml so each test trains in a second or two on CPU.
TEST_OVERRIDES = [
    "--data_feature_dim", "32", "--batch_size", "32", "--lr", "0.1", "--data_num_crops", "2", "--syn_num_scenes", "3",
    "--syn_num_events", "2", "--syn_train_videos_per_scene", "10",
    "--syn_test_videos_per_scene", "4", "--syn_min_snippets", "16", "--syn_max_snippets", "24",
    "--model_hidden1", "32", "--model_hidden2", "8", "--steps", "2", "--local_epochs", "2",
    "--fl_backend", "inprocess", "--device", "cpu",
]


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture
def tiny_cfg(tmp_path) -> Config:
    return parse_config(["--config", str(TINY), *TEST_OVERRIDES, "--out_dir", str(tmp_path / "run")])


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


@pytest.fixture
def flower_identity():
    """Flower messages need a task identity, which a live runtime sets; unit tests set one."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved
