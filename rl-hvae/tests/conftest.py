import os

import pytest
import torch

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")

from rl_hvae.config import parse_config  # noqa: E402
from rl_hvae.model import HierarchicalVAE, HVAEArch  # noqa: E402
from rl_hvae.released import ReleasedHVAE  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "configs", "tiny.toml")
PAPER = os.path.join(ROOT, "configs", "paper.toml")
# Smallest settings that keep the 5-level structure, for fast tests.
SMALL = ["--model_channels", "8", "--batch_size", "32", "--log_every", "1",
         "--eval_iw_samples", "4",
         "--eval_max_examples", "64", "--save_every", "0", "--eval_every", "0"]
TINY_ARCH = HVAEArch(in_channels=1, image_size=8, channels=8, blocks_per_stage=1)


@pytest.fixture
def device() -> torch.device:
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture
def tiny_cfg():
    return parse_config(["--config", TINY, *SMALL])


@pytest.fixture
def digits_batch() -> torch.Tensor:
    from rl_hvae.data import binarize, load_digits_split

    return binarize(load_digits_split("train").images[:16], seed=0)


@pytest.fixture
def tiny_model() -> HierarchicalVAE:
    """The intended network (every skip live), tiny."""
    torch.manual_seed(0)
    return HierarchicalVAE(TINY_ARCH)


@pytest.fixture
def released_model(digits_batch) -> ReleasedHVAE:
    """The released network, tiny, with its data-dependent init done on the digits batch."""
    torch.manual_seed(0)
    model = ReleasedHVAE(TINY_ARCH)
    model.data_init(digits_batch)
    return model


@pytest.fixture(params=["released", "intended"])
def any_model(request, digits_batch):
    torch.manual_seed(0)
    if request.param == "intended":
        return HierarchicalVAE(TINY_ARCH)
    model = ReleasedHVAE(TINY_ARCH)
    model.data_init(digits_batch)
    return model
