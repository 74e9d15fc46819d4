"""The analytic sphere renderer against brute-force quadrature, and its scale invariance."""

from __future__ import annotations

import torch

from alpha_invariance.scene import (
    SphereScene,
    _reference_render_rays,
    camera_rig,
    pinhole_rays,
    render_rays_exact,
)


def _rays(k: float = 1.0, n: int = 64):
    c2w = camera_rig(1, 3.0, seed=3)[0].double()
    c2w[:3, 3] *= k
    o, d = pinhole_rays(c2w, 8, 8, focal=11.0)
    o, d = o.double()[:n], d.double()[:n]
    return o, d, torch.full((o.shape[0],), 1.0 * k, dtype=torch.float64), \
        torch.full((o.shape[0],), 5.0 * k, dtype=torch.float64)


def test_exact_matches_brute_force():
    scene = SphereScene()
    o, d, near, far = _rays()
    exact = render_rays_exact(scene, o, d, near, far)
    brute = _reference_render_rays(scene, o, d, near, far, num_steps=40000)
    # quadrature error ~ sigma * step at sphere boundaries (step = 1e-4, sigma <= 40)
    torch.testing.assert_close(exact["rgb"], brute["rgb"], atol=3e-3, rtol=0)
    torch.testing.assert_close(exact["acc"], brute["acc"], atol=3e-3, rtol=0)
    hit = exact["acc"] > 0.5
    assert hit.any() and (~hit).any(), "test rays should both hit and miss the spheres"
    torch.testing.assert_close(exact["depth"][hit], brute["depth"][hit], atol=5e-3, rtol=0)


def test_scaled_scene_renders_identical_images():
    base = render_rays_exact(SphereScene(), *_rays(1.0))
    for k in (0.1, 10.0):
        scaled = render_rays_exact(SphereScene().scaled(k), *_rays(k))
        torch.testing.assert_close(scaled["rgb"], base["rgb"])
        torch.testing.assert_close(scaled["depth"], base["depth"] * k)


def test_scene_rejects_nonpositive_scale():
    import pytest

    with pytest.raises(ValueError):
        SphereScene().scaled(0.0)
