import math

import torch

from rl_hvae.distributions import (
    Gaussian,
    bernoulli_log_prob,
    discretized_logistic_log_prob,
    kl_analytic,
    kl_sample,
)


def _rand_gauss(gen, shape, dtype=torch.float32):
    return Gaussian(torch.randn(shape, generator=gen, dtype=dtype),
                    torch.rand(shape, generator=gen, dtype=dtype) + 0.3)


def test_kl_of_gaussian_with_itself_is_zero():
    g = _rand_gauss(torch.Generator().manual_seed(0), (4, 6))
    torch.testing.assert_close(kl_analytic(g, g), torch.zeros(4))


def test_kl_closed_form_scalar():
    # KL(N(1, 2^2) || N(0, 1)) = 0.5 * (4 + 1 - 1 - log 4)
    q = Gaussian(torch.tensor([[1.0]]), torch.tensor([[2.0]]))
    p = Gaussian(torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    torch.testing.assert_close(kl_analytic(q, p), torch.tensor([0.5 * (4 - math.log(4))]))


def test_analytic_kl_matches_monte_carlo_of_sample_estimator():
    gen = torch.Generator().manual_seed(1)
    q, p = _rand_gauss(gen, (1, 5), torch.float64), _rand_gauss(gen, (1, 5), torch.float64)
    n = 200_000
    qn = Gaussian(q.mean.expand(n, 5), q.std.expand(n, 5))
    pn = Gaussian(p.mean.expand(n, 5), p.std.expand(n, 5))
    mc = kl_sample(qn, pn, qn.rsample(gen)).sum(1).mean()
    # MC standard error at n = 2e5 is ~1e-2 here; 0.05 is > 4 standard errors
    assert abs(mc.item() - kl_analytic(q, p).item()) < 0.05


def test_log_prob_matches_torch_distributions():
    gen = torch.Generator().manual_seed(2)
    g = _rand_gauss(gen, (3, 4))
    z = torch.randn(3, 4, generator=gen)
    ref = torch.distributions.Normal(g.mean, g.std).log_prob(z).sum(1)
    torch.testing.assert_close(g.log_prob(z), ref)


def test_kl_gradcheck():
    gen = torch.Generator().manual_seed(3)
    m1, m2 = (torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
              for _ in range(2))
    s1, s2 = ((torch.rand(2, 3, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
              for _ in range(2))
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: kl_analytic(Gaussian(a, b), Gaussian(c, d)), (m1, s1, m2, s2))


def test_bernoulli_log_prob_closed_form():
    logits = torch.tensor([[0.0, 2.0]])
    x = torch.tensor([[1.0, 0.0]])
    expected = math.log(0.5) + math.log(1 - 1 / (1 + math.exp(-2.0)))
    torch.testing.assert_close(bernoulli_log_prob(logits, x), torch.tensor([expected]))


def test_discretized_logistic_is_normalised_over_bins():
    params = torch.tensor([0.3, -1.0]).view(1, 2, 1, 1)  # mean logit, log scale
    bins = 256
    xs = torch.arange(bins, dtype=torch.float32).view(bins, 1, 1, 1) / (bins - 1)
    log_p = discretized_logistic_log_prob(params.expand(bins, 2, 1, 1), xs)
    torch.testing.assert_close(log_p.exp().sum(), torch.tensor(1.0), atol=1e-4, rtol=0)
