"""Training losses of the stand-in models (none of them is CC:DAE itself, which needs no training).

Shapes: B batch, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP) between unit-norm embeddings a, b [B, D]; matched rows positive."""
    assert a.shape == b.shape, (a.shape, b.shape)
    logits = logit_scale.exp().clamp(max=100) * a @ b.T  # [B, B]
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
