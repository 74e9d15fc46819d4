import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.toml")
# A 3-frame, 96-pixel synthetic sequence and a very small field keep each test to seconds.
SMALL = [
    "--synth_frames",
    "3",
    "--synth_image_size",
    "96",
    "--render_samples",
    "12",
    "--batch_rays",
    "128",
    "--field_num_levels",
    "4",
    "--field_log2_hashmap_size",
    "10",
    "--log_every",
    "1",
    "--save_every",
    "0",
    "--eval_size",
    "32",
    "--pose_refine_start",
    "1",
]


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def small_sequence(tmp_path_factory):
    from eye_radiance.data import make_synthetic_sequence

    return make_synthetic_sequence(
        tmp_path_factory.mktemp("seq") / "seq", n_frames=3, image_size=96, seed=0
    )
