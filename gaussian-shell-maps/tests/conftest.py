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
         "--eval_keypoint_steps", "10", "--eval_garment_steps", "10"]


@pytest.fixture(scope="session")
def template():
    return load_body_template()


@pytest.fixture(scope="session")
def standin_assets(tmp_path_factory):
    """The official assets/ layout built from the procedural mannequin (no SMPL data)."""
    from gaussian_shell_maps.template import write_standin_assets

    return write_standin_assets(tmp_path_factory.mktemp("assets"), mask_resolution=64)


@pytest.fixture(scope="session")
def knn_rig(standin_assets):
    """(template, base, rig): the stand-in 'no hands, feet' base mesh skinned from the
    mannequin's 5 nearest vertices with shrunk inner shells, as the official SHHQ setting."""
    from gaussian_shell_maps.shells import ShellRig
    from gaussian_shell_maps.template import STANDIN_FILES as F
    from gaussian_shell_maps.template import load_shell_base

    template = load_body_template(str(standin_assets), need_uv=False,
                                  smpl_shrunk_mesh=F["smpl_shrunk_mesh"])
    base = load_shell_base(template, str(standin_assets), F["base_mesh"], F["shrunk_mesh"])
    return template, base, ShellRig(template, base, 5, 0.05, 0.0625)


@pytest.fixture()
def tiny_cfg():
    return parse_config(["--config", TINY, *SMALL])


@pytest.fixture()
def device():
    return torch.device(os.environ.get("TORCH_DEVICE", "cpu"))


@pytest.fixture()
def rng():
    return torch.Generator().manual_seed(0)
