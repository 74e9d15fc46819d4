"""Evaluation metrics of the paper: IW bound on log p(x), per-level KL, active units, mutual
information I(x; z_l), and the linear-SVM probe on each level's posterior mean.

Shapes: N examples, K importance samples, D units of one level (flattened).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .distributions import Gaussian, likelihood_log_prob
from .losses import level_kls
from .model import HierarchicalVAE


@torch.no_grad()
def iw_log_likelihood(model: HierarchicalVAE, x: torch.Tensor, k: int,
                      chunk: int = 16) -> dict[str, torch.Tensor]:
    """Importance-weighted bound (Burda et al. 2016) with k samples, per example.

    log w = log p(x|z) + log p(z) - log q(z|x) = log p(x|z) - sum_l [log q(z_l) - log p(z_l)];
    log p_k(x) = logsumexp_k log w - log k. With k = 1 this is the (single-sample) ELBO.

    Returns: {"iw": [N], "elbo": [N] (mean of log w), "kl": [L, N] (mean over samples)}.
    """
    log_ws, kls_all = [], []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        xr = x.repeat(n, 1, 1, 1)  # [n*N, C, H, W], sample-major
        p = model(xr)
        kls = torch.stack([kl.flatten(1).sum(1) for kl in level_kls(p)])  # [L, n*N]
        log_w = likelihood_log_prob(model.arch.likelihood, p.logits, xr) - kls.sum(0)
        log_ws.append(log_w.view(n, -1))  # [n, N]
        kls_all.append(kls.view(kls.shape[0], n, -1))  # [L, n, N]
    log_w = torch.cat(log_ws)  # [K, N]
    kl = torch.cat(kls_all, dim=1).mean(1)  # [L, N]
    return {"iw": torch.logsumexp(log_w, 0) - math.log(k), "elbo": log_w.mean(0), "kl": kl}


@torch.no_grad()
def posterior_stats(model: HierarchicalVAE, x: torch.Tensor,
                    chunk: int = 256) -> list[Gaussian]:
    """q(z_l | x) per level with means propagated upwards (use_mode), rows [N, D] flattened."""
    per_level: list[list[Gaussian]] = [[] for _ in range(model.n_levels)]
    for start in range(0, x.shape[0], chunk):
        posteriors, _ = model.infer(x[start:start + chunk], use_mode=True)
        for lvl, q in enumerate(posteriors):
            per_level[lvl].append(Gaussian(q.mean.flatten(1), q.std.flatten(1)))
    return [Gaussian(torch.cat([g.mean for g in gs]), torch.cat([g.std for g in gs]))
            for gs in per_level]


def active_units(means: torch.Tensor, threshold: float = 0.01) -> tuple[int, torch.Tensor]:
    """AU = #{d : Cov_x(E_q[z_d | x]) > threshold} (Burda et al. 2016). means: [N, D]."""
    var = means.var(dim=0, unbiased=True)  # [D]
    return int((var > threshold).sum()), var


def mutual_information(q: Gaussian, generator: torch.Generator | None = None) -> float:
    """I(x; z) under the encoder's joint q(x, z) = p_data(x) q(z|x), estimated on N examples:

        I = E_x E_{q(z|x)} [log q(z|x) - log q(z)],  q(z) ~= (1/N) sum_j q(z | x_j)

    (Hoffman & Johnson 2016; the estimator of He et al. 2019). q.mean/q.std: [N, D].
    """
    mean, std = q.mean.double(), q.std.double()
    n, d = mean.shape
    z = mean + std * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)  # [N, D]
    log_q_own = (-0.5 * (math.log(2 * math.pi) + 2 * std.log() + ((z - mean) / std) ** 2)).sum(1)
    diff = (z[:, None, :] - mean[None, :, :]) / std[None, :, :]  # [N_z, N_x, D]
    log_q_all = (-0.5 * (math.log(2 * math.pi) + 2 * std.log()[None] + diff**2)).sum(2)
    log_q_agg = torch.logsumexp(log_q_all, dim=1) - math.log(n)  # [N]
    return float((log_q_own - log_q_agg).mean())


def svm_accuracy(train_feats: np.ndarray, train_labels: np.ndarray, test_feats: np.ndarray,
                 test_labels: np.ndarray, c: float = 1.0) -> float:
    """Linear SVM (sklearn SVC, linear kernel, C = 1, as the official evaluation) test accuracy."""
    from sklearn.svm import SVC

    clf = SVC(kernel="linear", C=c)
    clf.fit(train_feats, train_labels)
    return float((clf.predict(test_feats) == test_labels).mean())
