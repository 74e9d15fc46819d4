import math

import numpy as np
import torch

from rl_hvae.distributions import Gaussian
from rl_hvae.metrics import active_units, iw_log_likelihood, mutual_information, svm_accuracy


def test_active_units_on_constructed_posterior():
    gen = torch.Generator().manual_seed(0)
    means = torch.zeros(500, 6)
    means[:, :2] = torch.randn(500, 2, generator=gen)  # var ~ 1: active
    means[:, 2] = 0.05 * torch.randn(500, generator=gen)  # var ~ 0.0025: inactive
    means[:, 3] = 0.2 * torch.randn(500, generator=gen)  # var ~ 0.04: active
    count, var = active_units(means)
    assert count == 3, var


def test_mutual_information_limits():
    gen = torch.Generator().manual_seed(0)
    n, d = 64, 3
    collapsed = Gaussian(torch.zeros(n, d), torch.ones(n, d))  # q(z|x) = p(z): I = 0
    assert abs(mutual_information(collapsed, gen)) < 1e-9
    # far-apart, sharp posteriors identify x exactly: I = log N
    sharp = Gaussian(10 * torch.arange(n, dtype=torch.float32)[:, None].repeat(1, d),
                     0.01 * torch.ones(n, d))
    assert abs(mutual_information(sharp, gen) - math.log(n)) < 1e-6


def test_iw_bound_k1_is_elbo_and_grows_with_k(tiny_model, digits_batch):
    tiny_model.eval()
    torch.manual_seed(0)
    one = iw_log_likelihood(tiny_model, digits_batch, k=1)
    torch.testing.assert_close(one["iw"], one["elbo"])
    torch.manual_seed(0)
    many = iw_log_likelihood(tiny_model, digits_batch, k=64)
    assert many["iw"].mean() > many["elbo"].mean()  # Jensen: the IW bound is tighter
    torch.manual_seed(1)
    more = iw_log_likelihood(tiny_model, digits_batch, k=256)
    assert more["iw"].mean() >= many["iw"].mean() - 0.05  # grows with k on average


def test_svm_probe_separable_and_random():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (50, 2)), rng.normal(3, 1, (50, 2))])
    y = np.array([0] * 50 + [1] * 50)
    assert svm_accuracy(x, y, x, y) == 1.0
    noise = rng.normal(0, 1, (100, 2))
    assert svm_accuracy(noise[:50], y[::2], noise[50:], y[1::2]) < 0.8
