"""Scene metrics (issue 19 item 6): PSNR and SSIM against closed forms, LPIPS labelled by its
backbone and zero on identical images."""

import math

import pytest
import torch

from eye_radiance.metrics import LpipsMetric, psnr, ssim


def test_psnr_closed_form():
    a = torch.full((8, 8, 3), 0.3)
    assert psnr(a + 0.1, a) == pytest.approx(20.0, abs=1e-4)  # mse 1e-2 -> 20 dB
    assert psnr(a, a) == math.inf


def test_ssim_of_constant_images_is_the_luminance_term():
    """No variance inside any window: SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = 0.01^2."""
    a, b, c1 = 0.3, 0.6, 0.01**2
    x, y = torch.full((16, 16, 3), a), torch.full((16, 16, 3), b)
    assert ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-4)
    noisy = torch.rand(16, 16, 3, generator=torch.Generator().manual_seed(0))
    assert ssim(noisy, noisy) == pytest.approx(1.0, abs=1e-5)
    assert ssim(noisy, noisy.flip(0)) < 0.5


def test_lpips_random_backbone_is_labelled_and_zero_on_identical_images():
    metric = LpipsMetric("")
    img = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    assert metric.label == "lpips_random_backbone"
    assert metric(img, img) == pytest.approx(0.0, abs=1e-6)
    assert metric(img, 1 - img) > 0
