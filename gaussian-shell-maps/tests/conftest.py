import os

import pytest
import torch

from gaussian_shell_maps.config import parse_config
from gaussian_shell_maps.template import load_body_template

# one intra-op thread: the suite's tensors are tiny and extra threads only contend on busy machines
torch.set_num_threads(1)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.toml")
# even smaller than tiny.toml so the suite stays fast on a shared 2-core machine
SMALL = ["--data_num_synthetic", "16", "--data_resolution", "16", "--num_gaussians", "200",
         "--batch_size", "4", "--eval_num_images", "16", "--save_every", "1000",
         "--eval_keypoint_steps", "10"]


@pytest.fixture(scope="session")
def template():
    return load_body_template()


@pytest.fixture()
def tiny_cfg():
    return parse_config(["--config", TINY, *SMALL])


@pytest.fixture()
def device():
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture()
def rng():
    return torch.Generator().manual_seed(0)
