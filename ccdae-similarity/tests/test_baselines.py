import numpy as np
import torch

from ccdae_similarity import baselines


def test_pixel_and_ssim_identity():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    np.testing.assert_allclose(baselines.ssim(a, a), 1.0, atol=1e-5)
    assert (baselines.ssim(a, b) < 0.5).all()
    np.testing.assert_allclose(baselines.pixel_similarity(a, a), 0.0)
    assert (baselines.pixel_similarity(a, b) < 0).all()


def test_lpips_random_backbone_runs():
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    same, diff = baselines.lpips_similarity(a, a), baselines.lpips_similarity(a, b)
    np.testing.assert_allclose(same, 0.0, atol=1e-6)
    assert (diff < 0).all()


def test_real_minilm_paraphrase_closer_than_unrelated():
    a = ["a red circle on the left in the forest"] * 2
    b = ["a crimson disc at the left side in the woods", "three blue squares at night"]
    sim = baselines.minilm_similarity(a, b)
    assert sim[0] > sim[1]
    np.testing.assert_allclose(baselines.minilm_similarity(a[:1], a[:1]), 1.0, atol=1e-5)


def test_lexical():
    np.testing.assert_allclose(baselines.lexical_similarity(["a b c", "a b"], ["a b c", "c d"]),
                               [1.0, 0.0])
