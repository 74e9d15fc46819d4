"""DINO self-distillation loss with centring and sharpening (Caron et al. 2021, Eq. 1-4).

Shapes: B batch, V_s student crops (2 global + local), V_t = 2 teacher (global) crops,
K prototypes. Logits arrive crop-major: [V * B, K], crop v in rows v*B .. (v+1)*B-1.

H(P_t, P_s) = - sum_k P_t[k] log P_s[k], with
P_s = softmax(g_s / tau_s) and P_t = softmax((g_t - c) / tau_t) (centring c, sharpening tau_t),
summed over all (teacher crop, student crop) pairs of different crops and averaged.
The centre is an EMA of the teacher's batch mean: c <- m c + (1 - m) mean(g_t).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


class DINOLoss(nn.Module):
    def __init__(self, out_dim: int, num_crops: int, student_temp: float = 0.1,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.num_crops = num_crops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))

    def forward(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                teacher_temp: float, update_center: bool = True) -> torch.Tensor:
        """student_logits [V_s*B, K], teacher_logits [2*B, K] -> scalar loss."""
        assert student_logits.shape[0] % self.num_crops == 0, student_logits.shape
        batch = student_logits.shape[0] // self.num_crops
        num_teacher = teacher_logits.shape[0] // batch
        assert teacher_logits.shape[0] == num_teacher * batch, teacher_logits.shape
        log_p_s = F.log_softmax(student_logits / self.student_temp, dim=-1)
        log_p_s = log_p_s.reshape(self.num_crops, batch, -1)  # [V_s, B, K]
        p_t = F.softmax((teacher_logits - self.center) / teacher_temp, dim=-1).detach()
        p_t = p_t.reshape(num_teacher, batch, -1)  # [V_t, B, K]
        # cross-entropy of every (teacher crop i, student crop v) pair: [V_t, V_s]
        ce = -torch.einsum("ibk,vbk->iv", p_t, log_p_s) / batch
        same_view = torch.eye(num_teacher, self.num_crops, dtype=torch.bool, device=ce.device)
        loss = ce[~same_view].mean()  # skip pairs where both see the same crop
        if update_center:
            self.update_center(teacher_logits)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_logits: torch.Tensor) -> None:
        batch_center = teacher_logits.sum(0, keepdim=True)
        count = torch.tensor(float(teacher_logits.shape[0]), device=teacher_logits.device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(batch_center)
            dist.all_reduce(count)
        self.center.mul_(self.center_momentum).add_(
            batch_center / count, alpha=1.0 - self.center_momentum)


def _reference_dino_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         center: torch.Tensor, num_crops: int, student_temp: float,
                         teacher_temp: float) -> torch.Tensor:
    """Loop form of the loss (official DINOLoss.forward), the oracle for tests."""
    student = (student_logits / student_temp).chunk(num_crops)
    teacher = F.softmax((teacher_logits - center) / teacher_temp, dim=-1).chunk(2)
    total, terms = 0.0, 0
    for i, q in enumerate(teacher):
        for v, s in enumerate(student):
            if v == i:
                continue
            total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
            terms += 1
    return total / terms
