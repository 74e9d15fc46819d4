"""The five families: recipe invariance across k, init transmittance, overfitting, gradients."""

from __future__ import annotations

import pytest
import torch

from alpha_invariance.config import FAMILIES
from alpha_invariance.data import make_synthetic
from alpha_invariance.model import ModelSpec, RadianceFieldModel

SMALL = {"num_samples": 16, "width": 16, "depth": 2, "pe_freqs": 3, "grid_res": 8,
         "tensorf_rank": 2, "hash_levels": 2, "hash_log2_size": 10, "hash_max_res": 32}


def _spec(family: str, recipe: bool, k: float = 1.0) -> ModelSpec:
    return ModelSpec(family=family, recipe=recipe, near=1.0 * k, far=5.0 * k,
                     bbox=((-1.1 * k,) * 3, (1.1 * k,) * 3), **SMALL)


def _rays(k: float, n: int = 32):
    data = make_synthetic(image_size=8, num_train=1, num_test=1, k=k)
    idx = torch.arange(0, 64, 64 // n)
    return data.rays_o[idx], data.rays_d[idx], data.rgb[idx]


@pytest.mark.parametrize("family", FAMILIES)
def test_recipe_model_is_alpha_invariant(family):
    """Same weights, scene scaled by k: the recipe renders the same colours (offsets cancel)."""
    torch.manual_seed(0)
    m1 = RadianceFieldModel(_spec(family, True, 1.0)).eval()
    for k in (0.1, 10.0):
        mk = RadianceFieldModel(_spec(family, True, k)).eval()
        mk.field.load_state_dict(m1.field.state_dict())
        o1, d1, _ = _rays(1.0)
        ok, dk, _ = _rays(k)
        a, b = m1(o1, d1), mk(ok, dk)
        torch.testing.assert_close(a["rgb"], b["rgb"], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(a["weights"], b["weights"], atol=1e-4, rtol=1e-4)


def test_plenoxels_baseline_is_not_invariant():
    """The invariance test can fail: Plenoxels' world-unit ReLU density is scale dependent."""
    torch.manual_seed(0)
    m1 = RadianceFieldModel(_spec("plenoxels", False, 1.0)).eval()
    m10 = RadianceFieldModel(_spec("plenoxels", False, 10.0)).eval()
    m10.field.load_state_dict(m1.field.state_dict())
    a, b = m1(*_rays(1.0)[:2]), m10(*_rays(10.0)[:2])
    assert (a["acc"] - b["acc"]).abs().max() > 0.1


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("k", [0.1, 10.0])
@pytest.mark.parametrize("target", [0.5, 0.99])
def test_recipe_init_transmittance(family, k, target):
    """Every ray has T >= T0 at init (up to the fields' init noise in x), and T = T0 for a ray
    whose samples all lie inside the scene box, where the whole extent L counts."""
    import dataclasses

    torch.manual_seed(0)
    spec = dataclasses.replace(_spec(family, True, k), target_transmittance=target)
    model = RadianceFieldModel(spec).eval()
    rays_o, rays_d = _rays(k)[:2]
    with torch.no_grad():
        out = model(rays_o, rays_d)
    t_ray = out["final_transmittance"]
    assert (t_ray >= target - 0.03).all(), t_ray.min()
    # a ray along the box diagonal through the centre, sampled only inside: T = T0
    inside_o = torch.tensor([[-1.0, -1.0, -1.0]]) * k / 3 ** 0.5 * 2.0
    with torch.no_grad():
        centre = RadianceFieldModel(dataclasses.replace(spec, near=0.5 * k, far=2.5 * k)).eval()
        # same field weights; the activation keeps its own offset (L = 2k here, not 4k)
        fields = {n: v for n, v in model.state_dict().items() if not n.startswith("activation.")}
        centre.load_state_dict(fields, strict=False)
        t_in = centre(inside_o, -inside_o / inside_o.norm())["final_transmittance"]
    # nerfacto's density is the first output of an MLP at its default init (as in nerfstudio),
    # so x = x0 + noise of ~0.1 there and E[exp(noise)] > 1 gives a slightly lower T
    tol = 0.1 if family == "nerfacto" else 0.03
    assert abs(float(t_in) - target) < tol, (float(t_in), target)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_overfits_a_ray_batch(family):
    torch.manual_seed(0)
    model = RadianceFieldModel(_spec(family, True, 1.0))
    o, d, rgb = _rays(1.0, n=16)
    # Adam on explicit grids needs large steps to move log densities by ~10 in 100 steps
    lr_grid = 0.3 if family == "plenoxels" else 1.0
    opt = torch.optim.Adam(model.param_groups(2e-2, lr_grid), eps=1e-15)
    first = None
    for _ in range(100):
        loss = ((model(o, d)["rgb"] - rgb) ** 2).mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < first / 10 or float(loss) < 5e-3, (first, float(loss))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("recipe", [False, True])
def test_finite_gradients(family, recipe):
    torch.manual_seed(0)
    model = RadianceFieldModel(_spec(family, recipe, 1.0))
    o, d, rgb = _rays(1.0, n=16)
    out = model(o, d, perturb=True)
    assert out["rgb"].shape == (16, 3) and out["weights"].shape == (16, 16)
    ((out["rgb"] - rgb) ** 2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_hash_encoding_matches_reference():
    """The vectorised hash encoding equals the per-corner loop, values and gradients."""
    from alpha_invariance.model import HashEncoding

    torch.manual_seed(0)
    enc = HashEncoding(levels=4, log2_size=8, max_res=64)
    with torch.no_grad():
        enc.table.normal_()
    x = torch.rand(50, 3, generator=torch.Generator().manual_seed(1))
    fast, ref = enc(x), enc._reference_forward(x)
    torch.testing.assert_close(fast, ref)
    g_fast = torch.autograd.grad(fast.square().sum(), enc.table)[0]
    g_ref = torch.autograd.grad(ref.square().sum(), enc.table)[0]
    torch.testing.assert_close(g_fast, g_ref)
