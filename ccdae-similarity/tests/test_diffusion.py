import torch

from ccdae_similarity import diffusion


def test_elbo_weights_match_gaussian_kl():
    """w_t ||eps - eps_hat||^2 equals the KL between the true and model posteriors."""
    g = torch.Generator().manual_seed(0)
    alpha_bar = diffusion.linear_alpha_bar(50).double()
    w = diffusion.elbo_weights(alpha_bar, "elbo").double()
    x0 = torch.rand(3, 4, 4, generator=g, dtype=torch.float64) * 2 - 1
    eps = torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    eps_hat = eps + 0.3 * torch.randn(3, 4, 4, generator=g, dtype=torch.float64)
    for t in (1, 7, 25, 49):
        kl = diffusion._reference_kl_term(x0, eps, eps_hat, t, alpha_bar)
        torch.testing.assert_close(w[t] * ((eps - eps_hat) ** 2).sum(), kl, rtol=1e-4, atol=1e-8)


def test_negative_elbo_zero_for_perfect_denoiser_and_positive_otherwise():
    alpha_bar = diffusion.linear_alpha_bar(20)
    w = diffusion.elbo_weights(alpha_bar)
    ts = diffusion.stratified_timesteps(20, 5)
    assert ts.min() >= 1 and ts.max() <= 19 and len(ts) == 5
    x0 = torch.rand(2, 3, 4, 4) * 2 - 1
    noise = torch.randn(5, 3, 4, 4, generator=torch.Generator().manual_seed(1))

    def perfect(x_t, t):  # recovers eps exactly from x_t and the known x0
        ab = alpha_bar[t].view(-1, 1, 1, 1)
        return (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()

    torch.testing.assert_close(diffusion.negative_elbo(perfect, x0, ts, noise, alpha_bar, w),
                               torch.zeros(2), atol=1e-3, rtol=0)
    zero = diffusion.negative_elbo(lambda x_t, t: torch.zeros_like(x_t), x0, ts, noise,
                                   alpha_bar, w)
    assert (zero > 0).all()


def test_uniform_weighting_and_bad_kind():
    w = diffusion.elbo_weights(diffusion.linear_alpha_bar(10), "uniform")
    assert w[0] == 0 and torch.all(w[1:] == 0.5)
    try:
        diffusion.elbo_weights(diffusion.linear_alpha_bar(10), "vlb")
    except ValueError as err:
        assert "elbo" in str(err)
    else:
        raise AssertionError("unknown weighting accepted")
