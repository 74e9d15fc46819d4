"""One participant's private side: its videos, pseudo-labels and local training (no Flower here).

The Flower ClientApp (`flower_app.py`), the local-only baseline and the centralised baseline all
call these functions, so the three settings differ only in who holds which videos and which
normal statistics reach the fine pseudo-labelling step.

Shape legend: N snippets of the participant, C crops, D feature size, T snippets of one video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import pseudo_labels as pl
from .data import VideoSet, stack_snippets
from .runtime import ConfigError


@dataclass(frozen=True)
class LocalOptim:
    """Local SGD settings (official client: SGD lr 1e-2, batch 128, BCE)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.0
    weight_decay: float = 0.0
    proximal_mu: float = 0.0  # FedProx: + mu/2 ||w - w_global||^2
    gmm_max_iter: int = 150
    window_ratio: float = 0.2
    refine_window_ratio: float = 0.1
    window_at_least_one: bool = False  # official: int(0.2 T) may be 0 (no positive for T < 5)
    shuffle: bool = True  # official client DataLoader: no shuffling (snippets in list order)


class Participant:
    """Holds a participant's training videos; features never leave this object.

    Args:
        videos: the participant's training `VideoSet` (event/scene ids are ignored).
        optim: local optimisation and pseudo-label settings.
        seed: base seed; each round reseeds with (seed, round, participant id).
        pid: participant id.
    """

    def __init__(self, videos: VideoSet, optim: LocalOptim, seed: int, pid: int) -> None:
        if len(videos) == 0:
            raise ConfigError(f"participant {pid} has no training videos",
                              "use fewer participants or another split")
        self.videos = videos
        self.optim = optim
        self.seed = seed
        self.pid = pid
        self.x = torch.from_numpy(stack_snippets(videos))  # [N, C, D]
        self.lengths = np.array([f.shape[0] for f in videos.features])
        self._video_labels: np.ndarray | None = None

    @property
    def num_snippets(self) -> int:
        return int(self.x.shape[0])

    # -- pseudo-labels -------------------------------------------------------------------------
    def video_labels(self) -> np.ndarray:
        """Coarse (video-level) pseudo-labels [V], computed once from local data only."""
        if self._video_labels is None:
            self._video_labels = pl.coarse_video_labels(self.videos.features,
                                                        self.optim.gmm_max_iter)
        return self._video_labels

    def normal_statistics(self) -> tuple[float, float, int]:
        """(mu, var, n) of normal-snippet magnitudes: the only data-derived values shared."""
        return pl.normal_statistics(self.videos.features, self.video_labels())

    def snippet_labels(self, shared_stats: list[tuple[float, float, int]]) -> np.ndarray:
        """Fine pseudo-labels [N] in snippet order, from the (shared) normal statistics."""
        per_video = pl.fine_snippet_labels(self.videos.features, self.video_labels(),
                                           shared_stats, self.optim.window_ratio,
                                           self.optim.window_at_least_one)
        return np.concatenate(per_video).astype(np.float32)

    @torch.no_grad()
    def refine(self, model: nn.Module, labels: np.ndarray, device: torch.device) -> np.ndarray:
        """Score-based refinement of the labels of videos judged anomalous (official pl_refining)."""
        scores = score_snippets(model, self.x, device)
        out = labels.copy()
        bounds = np.concatenate([[0], np.cumsum(self.lengths)])
        for v, y in enumerate(self.video_labels()):
            if y == 1:
                a, b = bounds[v], bounds[v + 1]
                out[a:b] = pl.refine_labels(labels[a:b], scores[a:b],
                                            self.optim.refine_window_ratio,
                                            self.optim.window_at_least_one)
        return out

    # -- training ------------------------------------------------------------------------------
    def train(self, model: nn.Module, labels: np.ndarray, round_idx: int, device: torch.device,
              control: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None) -> dict:
        """`optim.epochs` epochs of SGD on BCE(score, pseudo-label), in place on `model`.

        Args:
            model: scorer initialised with the global (or local) weights.
            labels: [N] pseudo-labels.
            round_idx: absolute round, used for the seed.
            control: SCAFFOLD (c_global, c_local) per trainable parameter, or None.
        Returns:
            dict with "loss" (mean BCE), "steps" (optimizer steps) and "num-examples".
        """
        assert labels.shape == (self.num_snippets,), (labels.shape, self.num_snippets)
        opt_cfg = self.optim
        torch.manual_seed(self.seed * 1_000_003 + round_idx * 1009 + self.pid)  # dropout
        gen = torch.Generator().manual_seed(self.seed * 7919 + round_idx * 104729 + self.pid)
        params = [p for p in model.parameters() if p.requires_grad]
        global_params = [p.detach().clone() for p in params] if opt_cfg.proximal_mu > 0 else None
        optimizer = torch.optim.SGD(params, lr=opt_cfg.lr, momentum=opt_cfg.momentum,
                                    weight_decay=opt_cfg.weight_decay)
        y_all = torch.from_numpy(labels)
        model.train()
        losses, steps = [], 0
        for _ in range(opt_cfg.epochs):
            order = (torch.randperm(self.num_snippets, generator=gen) if opt_cfg.shuffle
                     else torch.arange(self.num_snippets))  # official: list order, no shuffle
            for start in range(0, self.num_snippets, opt_cfg.batch_size):
                idx = order[start:start + opt_cfg.batch_size]
                x, y = self.x[idx].to(device), y_all[idx].to(device)
                scores = model(x)
                if not torch.isfinite(scores).all():  # BCE itself would raise a RuntimeError
                    raise FloatingPointError(f"non-finite loss {{'bce': nan}} (participant "
                                             f"{self.pid}, round {round_idx}): scores not finite")
                loss = nn.functional.binary_cross_entropy(scores, y)
                if global_params is not None:  # FedProx proximal term
                    prox = sum(((p - g) ** 2).sum() for p, g in zip(params, global_params))
                    loss = loss + 0.5 * opt_cfg.proximal_mu * prox
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss {{'bce': {loss.item()}}} "
                                             f"(participant {self.pid}, round {round_idx})")
                optimizer.zero_grad()
                loss.backward()
                if control is not None:  # SCAFFOLD: g <- g + c - c_i
                    for p, c, c_i in zip(params, *control):
                        p.grad.add_(c.to(device) - c_i.to(device))
                optimizer.step()
                losses.append(loss.item())
                steps += 1
        return {"loss": float(np.mean(losses)), "steps": steps, "num-examples": self.num_snippets}


@torch.no_grad()
def score_snippets(model: nn.Module, x: torch.Tensor, device: torch.device,
                   batch_size: int = 4096) -> np.ndarray:
    """Scores [N] of snippets x [N, C, D] in eval mode."""
    model.eval()
    out = [model(x[i:i + batch_size].to(device)).cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(out).numpy().astype(np.float64)
