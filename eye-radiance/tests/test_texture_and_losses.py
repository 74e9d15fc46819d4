import math

import pytest
import torch

from eye_radiance.losses import (
    random_angles,
    reconstruction_loss,
    robust_rotation_prior,
    rotate_coords,
    rotation_prior_loss,
)
from eye_radiance.texture import (
    HashGrid2D,
    IrisTexture,
    TextureArch,
    _reference_hash_grid,
    level_layout,
)


def test_official_level_layout():
    layout = level_layout(TextureArch())
    assert len(layout) == 16
    assert layout[0][1] == 16 and not layout[0][3]  # base resolution 16, dense
    assert layout[1][1] == math.ceil(16 * 1.5 - 1) + 1  # tiny-cuda-nn: ceil(scale) + 1
    dense = [res * res <= 2**15 for _, res, _, _ in layout]
    assert [not h for *_, h in layout] == dense and not all(dense)
    assert all(size <= 2**15 and size % 8 == 0 for _, _, size, _ in layout)


def test_hash_grid_matches_reference_loop_and_is_bilinear():
    torch.manual_seed(0)
    grid = HashGrid2D(TextureArch(num_levels=6, log2_hashmap_size=8))
    with torch.no_grad():
        grid.table.normal_()
    pts = torch.rand(20, 2, dtype=torch.float64)
    fast = grid(pts.float())
    slow = torch.tensor([_reference_hash_grid(grid, p.tolist()) for p in pts])
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)  # float32 table
    # a dense level holding a linear function of its cell indices interpolates it exactly
    scale, res, size, hashed = grid.layout[0]
    assert not hashed
    with torch.no_grad():
        idx = torch.arange(size)
        grid.table[:size, 0] = (idx % res).float() * 2 + (idx // res).float() * 3
    x = torch.rand(50, 2) * 0.9
    pos = x * scale + 0.5
    torch.testing.assert_close(grid(x)[:, 0], pos[:, 0] * 2 + pos[:, 1] * 3,
                               atol=1e-4, rtol=1e-5)


def test_iris_texture_is_the_official_network():
    tex = IrisTexture(TextureArch())
    assert tex.encoding.out_dim() == 32
    linears = [m for m in tex.mlp if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [64, 64, 3] and all(m.bias is None for m in linears)
    out = tex(torch.rand(10, 2))
    assert out.shape == (10, 3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tcnn_texture_grid_matches_torch_grid():
    tcnn = pytest.importorskip("tinycudann")
    arch = TextureArch(num_levels=6, log2_hashmap_size=10)
    enc = tcnn.Encoding(2, arch.tcnn_config()["encoding"], dtype=torch.float32).cuda()
    grid = HashGrid2D(arch).cuda()
    with torch.no_grad():
        enc.params.copy_(grid.table.reshape(-1))
    x = torch.rand(1000, 2, device="cuda")
    torch.testing.assert_close(enc(x).float(), grid(x), atol=1e-5, rtol=1e-4)


def test_rotate_coords_closed_form():
    out = rotate_coords(torch.tensor([[1.0, 0.0]]), torch.tensor([math.pi / 2, math.pi]))
    torch.testing.assert_close(out, torch.tensor([[[0.0, 1.0]], [[-1.0, 0.0]]]), atol=1e-6, rtol=0)


def test_robust_prior_pulls_only_outliers():
    """20 rotations of one point, one channel: 19 values 0 and one 1. Mean 0.05, std 0.2236,
    p90 = 0 and p10 = 0: only the value 1 is outside [p10 - std, p90 + std]; its deviation from
    the mean is 0.95, so the loss (MSE over its 3 channels, two of which deviate by 0) is
    0.95^2 / 3. 'all' averages every deviation instead."""
    values = torch.zeros(20, 1, 3)
    values[7, 0, 0] = 1.0
    assert abs(robust_rotation_prior(values).item() - 0.95**2 / 3) < 1e-6
    all_mode = ((values - values.mean(0)) ** 2).mean().item()
    assert abs(robust_rotation_prior(values, "all").item() - all_mode) < 1e-7
    # a spread of values with no outlier beyond one std: nothing is pulled (0, not NaN)
    spread = torch.linspace(0, 1, 20)[:, None, None].expand(20, 4, 3).contiguous()
    assert robust_rotation_prior(spread).item() == 0.0


def test_rotation_prior_zero_for_radial_texture_positive_for_angular():
    def radial(c):
        r = (c - 0.5).norm(dim=-1, keepdim=True)
        return torch.cat([r, r**2, torch.cos(5 * r)], -1)

    def angular(c):
        return torch.cat([c, c[:, :1] * 0], -1) * 0 + torch.sign(c[:, :1] - 0.5)

    coords = torch.rand(64, 2) - 0.5
    torch.manual_seed(0)
    assert rotation_prior_loss(radial, coords, 20).item() < 1e-10
    assert rotation_prior_loss(angular, coords, 20, mode="all").item() > 0.1


def test_random_angles_are_drawn_on_the_coordinates_device(monkeypatch):
    """The released prior draws its angles with torch.rand on the model's device; a CPU
    generator with CUDA tensors crashes (issue 24). Shown on the meta device without CUDA."""
    seen = {}
    real_rand = torch.rand

    def spy(*args, **kwargs):
        seen.update(device=kwargs.get("device"), generator=kwargs.get("generator"))
        return real_rand(*args, **{k: v for k, v in kwargs.items() if k != "generator"})

    monkeypatch.setattr(torch, "rand", spy)
    coords = torch.zeros(8, 2, device="meta")
    angles = random_angles(20, coords.device)
    assert angles.device.type == "meta" and seen["device"].type == "meta"
    assert seen["generator"] is None
    with pytest.raises(ValueError, match="generator on cpu"):
        random_angles(20, coords.device, torch.Generator())


def test_reconstruction_loss_empty_batch_is_zero():
    pred = torch.zeros(0, 3, requires_grad=True)
    assert reconstruction_loss(pred, torch.zeros(0, 3)).item() == 0.0
