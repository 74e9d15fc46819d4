import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.toml")
PAPER = os.path.join(ROOT, "configs", "paper.toml")
# A 2-frame, 128 x 64 synthetic capture (limbus radius 8 px) and a very small field keep each
# training test to seconds.
SMALL = [
    "--synth_frames", "2", "--synth_image_size", "64", "--data_erode_px", "1",
    "--field_num_levels", "4", "--field_log2_hashmap_size", "12", "--field_max_res", "64",
    "--prop_samples", "16,8", "--prop_nerf_samples", "8", "--texture_num_levels", "4",
    "--texture_log2_hashmap_size", "10", "--rot_angles", "6", "--batch_rays", "128",
    "--log_every", "1", "--save_every", "0", "--eval_size", "32",
]


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture(scope="session")
def small_capture(tmp_path_factory):
    from eye_radiance.synthetic import make_synthetic_capture

    return make_synthetic_capture(tmp_path_factory.mktemp("cap") / "capture", n_frames=2,
                                  image_size=64, seed=0)
