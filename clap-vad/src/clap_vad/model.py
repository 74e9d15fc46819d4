"""Snippet anomaly scorer (official `C2FPL_ucf` / `C2FPL_XD` network of AnasEmad11/CLAP).

Shape legend: B snippets in a batch, C crops, D feature size (2048 UCF-Crime, 1024 XD-Violence).
FC D->512, ReLU, dropout 0.6, FC 512->32, ReLU, dropout 0.6, FC 32->1, sigmoid; the snippet score
is the mean of the crop scores. The official class also defines softmax "attention" branches that
its forward never uses; `attention=True` turns them on as gates h * a + h (off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ScorerConfig:
    in_dim: int = 2048
    hidden1: int = 512
    hidden2: int = 32
    dropout: float = 0.6
    attention: bool = False
    xavier_init: bool = True  # official C2FPL_ucf: Xavier; C2FPL_XD leaves PyTorch's default init


class SnippetScorer(nn.Module):
    """Maps crop features of a snippet to an anomaly score in (0, 1)."""

    def __init__(self, cfg: ScorerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.in_dim, cfg.hidden1)
        self.fc2 = nn.Linear(cfg.hidden1, cfg.hidden2)
        self.fc3 = nn.Linear(cfg.hidden2, 1)
        if cfg.attention:
            self.att1 = nn.Linear(cfg.in_dim, cfg.hidden1)
            self.att2 = nn.Linear(cfg.hidden1, cfg.hidden2)
        self.dropout = nn.Dropout(cfg.dropout)
        for m in self.modules():  # official weight_init: Xavier-uniform weights, zero bias
            if isinstance(m, nn.Linear) and cfg.xavier_init:
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args:
            x: [B, C, D] snippet features (C crops).
        Returns:
            [B] anomaly scores in (0, 1), the mean over crops of sigmoid(logit).
        """
        assert x.ndim == 3 and x.shape[-1] == self.cfg.in_dim, (x.shape, self.cfg.in_dim)
        h = self.fc1(x)  # [B, C, hidden1]
        if self.cfg.attention:
            h = h * torch.softmax(self.att1(x), dim=-1) + h
        h = self.dropout(torch.relu(h))
        g = self.fc2(h)  # [B, C, hidden2]
        if self.cfg.attention:
            g = g * torch.softmax(self.att2(h), dim=-1) + g
        g = self.dropout(torch.relu(g))
        return torch.sigmoid(self.fc3(g)).squeeze(-1).mean(dim=1)  # [B]
