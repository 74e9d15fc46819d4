import torch

from rl_hvae.distributions import Gaussian
from rl_hvae.losses import (
    free_nats_kl,
    free_nats_schedule,
    kl_beta,
    level_kls,
    negative_elbo,
    q_value,
    rl_loss,
    skip_path_cost,
)


def test_negative_elbo_hand_computed():
    log_px = torch.tensor([-10.0, -20.0])
    kls = [torch.tensor([[1.0, 2.0], [0.5, 0.5]]), torch.tensor([[3.0], [0.0]])]
    loss, elbo = negative_elbo(log_px, kls, beta=0.5)
    torch.testing.assert_close(elbo, torch.tensor([-10.0 - 6.0, -20.0 - 1.0]))
    torch.testing.assert_close(loss, torch.tensor([10.0 + 3.0, 20.0 + 0.5]))


def test_free_nats_floor_per_unit():
    kl = torch.tensor([[0.1, 2.0, 0.0, 0.0]])  # 4 units, budget 2 nats -> 0.5 per unit
    torch.testing.assert_close(free_nats_kl(kl, 2.0), torch.tensor([0.5 + 2.0 + 0.5 + 0.5]))
    torch.testing.assert_close(free_nats_kl(kl, 0.0), torch.tensor([2.1]))


def test_schedules():
    assert kl_beta(0, 0) == 1.0 and kl_beta(5, 10) == 0.5 and kl_beta(20, 10) == 1.0
    assert free_nats_schedule(3, 2.0, 10) == 2.0
    assert free_nats_schedule(10, 2.0, 10) == 0.0
    assert abs(free_nats_schedule(7, 2.0, 10) - 2.0 * (1 - 2 / 5)) < 1e-12


def test_q_value_discounting():
    r = [torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)]
    torch.testing.assert_close(q_value(r, 0.5), torch.tensor(1.0 + 1.0 + 1.0))


def test_elbo_matches_independent_reference(any_model, digits_batch):
    """ELBO of the fixed-weight model = log Bernoulli(x | decoder(z)) - sum_l [log q - log p],
    recomputed with torch.distributions from the same latents."""
    torch.manual_seed(0)
    p = any_model(digits_batch)
    _, elbo = negative_elbo(
        -torch.nn.functional.binary_cross_entropy_with_logits(
            p.logits, digits_batch, reduction="none").flatten(1).sum(1), level_kls(p))
    ref = torch.distributions.Bernoulli(logits=p.logits).log_prob(digits_batch).flatten(1).sum(1)
    for q, prior, z in zip(p.posteriors, p.priors, p.z):
        lq = torch.distributions.Normal(q.mean, q.std).log_prob(z).flatten(1).sum(1)
        lp = torch.distributions.Normal(prior.mean, prior.std).log_prob(z).flatten(1).sum(1)
        ref = ref - (lq - lp)
    torch.testing.assert_close(elbo, ref)


def test_skip_path_ignores_skipped_posteriors(any_model, digits_batch):
    """Decoding from z_{>n} must not depend on the posterior latents of levels <= n."""
    p = any_model(digits_batch)
    n = 2
    z_a = [None if lvl < n else z for lvl, z in enumerate(p.z)]
    out_a = any_model.generate(z_a, digits_batch.shape[0])[0]
    z_noise = [torch.randn_like(z) if lvl < n else z for lvl, z in enumerate(p.z)]
    out_full_noise = any_model.generate(z_noise, digits_batch.shape[0])[0]
    torch.testing.assert_close(out_a, any_model.generate(z_a, digits_batch.shape[0])[0])
    assert not torch.allclose(out_a, out_full_noise)  # lower latents do matter when used


def test_skip_cost_without_skipping_is_reconstruction_plus_first_kl(any_model, digits_batch):
    p = any_model(digits_batch)
    kls = level_kls(p)
    cost = skip_path_cost(any_model, digits_batch, p, kls, 0, beta=1.0, free_nats=0.0)
    rec = torch.nn.functional.binary_cross_entropy_with_logits(
        p.logits, digits_batch, reduction="none").flatten(1).sum(1)
    torch.testing.assert_close(cost, (rec + kls[0].flatten(1).sum(1)).mean())


def test_rl_loss_reaches_every_level_policy(tiny_model, digits_batch):
    loss, stats = rl_loss(tiny_model, digits_batch, t=0, gamma=0.9)
    loss.backward()
    for lvl, q in enumerate(tiny_model.q_layers):
        g = q.to_params.parametrizations.weight.original1.grad
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0, lvl
    assert set(stats) >= {"elbo", "q_cost", "kl_1", "kl_5"}


def test_rl_loss_is_discounted_sum_of_skip_costs(any_model, digits_batch):
    """Q at decision step t = sum_i gamma^i c(t + i), the paths skipping t, t+1, ..., L-1 levels."""
    gamma, t = 0.9, 3
    torch.manual_seed(5)
    loss, _ = rl_loss(any_model, digits_batch, t=t, gamma=gamma)
    torch.manual_seed(5)
    p = any_model(digits_batch)
    kls = level_kls(p)
    costs = [skip_path_cost(any_model, digits_batch, p, kls, n, 1.0, 0.0) for n in (3, 4)]
    torch.testing.assert_close(loss, costs[0] + gamma * costs[1])


def test_reparameterised_policy_gradient_matches_reinforce_and_closed_form():
    """Toy one-step decision: policy N(mu, s^2), cost c(z) = (z - 3)^2, Q = E[c].
    dQ/dmu = 2 (mu - 3) in closed form; the reparameterised gradient used by `rl_loss` and the
    score-function (REINFORCE) estimate must both agree with it."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    s = torch.tensor(0.5, dtype=torch.float64)
    policy = Gaussian(mu.expand(200_000), s.expand(200_000))
    z = policy.rsample(gen)
    q = q_value([((z - 3.0) ** 2).mean()], gamma=0.9)
    (grad_rep,) = torch.autograd.grad(q, mu)
    z_det = z.detach()
    score = (z_det - mu.detach()) / s**2  # d/dmu log N(z; mu, s^2)
    grad_reinforce = (((z_det - 3.0) ** 2) * score).mean()
    assert abs(grad_rep.item() - 2 * (1.0 - 3.0)) < 0.02
    assert abs(grad_reinforce.item() - 2 * (1.0 - 3.0)) < 0.1  # REINFORCE has higher variance
