"""Closed forms, invariance, log-space stability, init formula and the reference oracle."""

from __future__ import annotations

import math

import pytest
import torch

from alpha_invariance.render import (
    DensityActivation,
    _reference_composite,
    alpha_direct,
    alpha_log_space,
    composite,
    init_log_density,
    init_log_density_per_sample,
    stratified_samples,
)


def _uniform_ray(sigma: float, length: float, n: int, dtype=torch.float64):
    delta = torch.full((1, n), length / n, dtype=dtype)
    t = torch.cumsum(delta, -1) - delta / 2
    return torch.full((1, n), sigma, dtype=dtype), delta, t


@pytest.mark.parametrize("n", [1, 7, 128])
def test_constant_density_ray_closed_form(n):
    sigma, length = 0.7, 3.0
    s, d, t = _uniform_ray(sigma, length, n)
    out = composite(s * d, torch.ones(1, n, 3, dtype=torch.float64), t)
    expected = 1 - math.exp(-sigma * length)
    torch.testing.assert_close(out["acc"], torch.tensor([expected], dtype=torch.float64))
    torch.testing.assert_close(out["final_transmittance"],
                               torch.tensor([math.exp(-sigma * length)], dtype=torch.float64))
    # the same through the log-space recipe
    act = DensityActivation("log", offset=math.log(sigma))
    out2 = composite(act(torch.zeros_like(s), d), torch.ones(1, n, 3, dtype=torch.float64), t)
    torch.testing.assert_close(out2["acc"], out["acc"])


@pytest.mark.parametrize("k", [1e-3, 0.1, 10.0, 1e3])
def test_alpha_invariance_scaling(k, rng):
    """d -> k d and sigma -> sigma / k render identical colours and weights (Sec. 3)."""
    sigma = torch.rand(5, 32, generator=rng, dtype=torch.float64) * 5
    delta = torch.rand(5, 32, generator=rng, dtype=torch.float64) * 0.1 + 0.01
    rgb = torch.rand(5, 32, 3, generator=rng, dtype=torch.float64)
    t = torch.cumsum(delta, -1)
    a = composite(sigma * delta, rgb, t, background=1.0)
    b = composite((sigma / k) * (delta * k), rgb, t * k, background=1.0)
    torch.testing.assert_close(a["rgb"], b["rgb"])
    torch.testing.assert_close(a["weights"], b["weights"])
    # log space: x -> x - log k, log d -> log d + log k
    la = alpha_log_space(torch.log(sigma), torch.log(delta))
    lb = alpha_log_space(torch.log(sigma) - math.log(k), torch.log(delta) + math.log(k))
    torch.testing.assert_close(la, lb)


def test_log_space_alpha_matches_direct_and_stays_finite():
    x = torch.linspace(-8, 4, 50)
    d = torch.linspace(0.01, 2.0, 50)
    torch.testing.assert_close(alpha_log_space(x, torch.log(d)), alpha_direct(torch.exp(x), d),
                               atol=1e-6, rtol=1e-5)  # float32 rounding of two exp paths
    # overflow: exp(95) = inf in float32, but exp(95 + log d) with log d = -95 + log 0.5 is 0.5
    x_big = torch.tensor([95.0])
    log_d = torch.tensor([-95.0 + math.log(0.5)])
    assert alpha_direct(torch.exp(x_big), torch.exp(log_d)).isnan().any() or \
        not torch.isclose(alpha_direct(torch.exp(x_big), torch.exp(log_d)),
                          torch.tensor([1 - math.exp(-0.5)])).all()
    torch.testing.assert_close(alpha_log_space(x_big, log_d), torch.tensor([1 - math.exp(-0.5)]))
    # underflow: sigma = exp(-110) rounds to 0 in float32 but sigma * d with d = e^100 is e^-10
    x_small, log_d2 = torch.tensor([-110.0]), torch.tensor([100.0])
    assert alpha_direct(torch.exp(x_small), torch.exp(log_d2)).item() == 0.0 or \
        torch.isnan(alpha_direct(torch.exp(x_small), torch.exp(log_d2))).item()
    got = alpha_log_space(x_small, log_d2)
    torch.testing.assert_close(got, torch.tensor([-math.expm1(-math.exp(-10.0))]))
    # extreme values: finite values and finite gradients
    xs = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], requires_grad=True)
    a = alpha_log_space(xs, torch.zeros(5))
    a.sum().backward()
    assert torch.isfinite(a).all() and torch.isfinite(xs.grad).all()


@pytest.mark.parametrize("k", [0.01, 0.1, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("n", [8, 64, 512])
@pytest.mark.parametrize("target", [0.5, 0.9, 0.99])
def test_init_gives_target_transmittance(k, n, target):
    """x0 of Sec. 4.2 gives T(full ray) = T0 for any scale and any sample count."""
    length = 4.0 * k
    x0 = init_log_density(target, length)
    assert x0 == pytest.approx(init_log_density_per_sample(target, length, n), abs=1e-9)
    near, far = torch.tensor([2.0 * k], dtype=torch.float64), torch.tensor([6.0 * k],
                                                                           dtype=torch.float64)
    t, delta = stratified_samples(near, far, n, perturb=True)
    act = DensityActivation("log", offset=x0).double()
    out = composite(act(torch.zeros_like(t), delta), torch.zeros(1, n, 3, dtype=torch.float64), t)
    # the offset buffer is stored in float32: 1e-6 covers its rounding
    assert out["final_transmittance"].item() >= target - 1e-6
    assert out["final_transmittance"].item() == pytest.approx(target, abs=1e-6)


def test_init_rejects_bad_arguments():
    with pytest.raises(ValueError):
        init_log_density(1.0, 4.0)
    with pytest.raises(ValueError):
        init_log_density(0.99, 0.0)


def test_composite_matches_reference_forward_and_backward(rng):
    sigma = (torch.rand(4, 9, generator=rng, dtype=torch.float64) * 3).requires_grad_()
    delta = torch.rand(4, 9, generator=rng, dtype=torch.float64) * 0.5 + 0.05
    rgb = torch.rand(4, 9, 3, generator=rng, dtype=torch.float64).requires_grad_()
    t = torch.cumsum(delta, -1)
    fast = composite(sigma * delta, rgb, t, background=1.0)
    ref = _reference_composite(sigma, delta, rgb, background=1.0)
    torch.testing.assert_close(fast["rgb"], ref["rgb"])
    torch.testing.assert_close(fast["weights"], ref["weights"])
    g_fast = torch.autograd.grad(fast["rgb"].sum(), [sigma, rgb])
    g_ref = torch.autograd.grad(ref["rgb"].sum(), [sigma, rgb])
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)


def test_gradcheck_composite_and_log_alpha(rng):
    tau = (torch.rand(2, 5, generator=rng, dtype=torch.float64) + 0.1).requires_grad_()
    rgb = torch.rand(2, 5, 3, generator=rng, dtype=torch.float64).requires_grad_()
    t = torch.cumsum(torch.ones(2, 5, dtype=torch.float64), -1)
    assert torch.autograd.gradcheck(lambda a, c: composite(a, c, t, 1.0)["rgb"], (tau, rgb))
    x = torch.randn(6, generator=rng, dtype=torch.float64).requires_grad_()
    log_d = torch.randn(6, generator=rng, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(alpha_log_space, (x, log_d))


def test_stratified_samples_tile_the_ray():
    near, far = torch.tensor([1.0, 2.0]), torch.tensor([5.0, 3.0])
    t, delta = stratified_samples(near, far, 10, perturb=True)
    torch.testing.assert_close(delta.sum(-1), far - near)
    assert ((t >= near[:, None]) & (t <= far[:, None])).all()
    assert (t.diff(dim=-1) > 0).all()
