"""Losses of VL2V-ADiP and its baselines (Addepalli et al., CVPR 2024, Sec. 4).

Shapes: `B` batch, `D` teacher embedding size, `C` classes.

- `alignment_loss`: the Align/Distill objective (stages 1 and 2 use the same loss; they differ in
  which parameters are trained). With p the L2-normalised projected student feature, v the
  teacher's normalised image embedding and t the text embedding of the label,
      L = lmd * (1 - cos(p, v)) + (1 - lmd) * (1 - cos(p, t)),          lmd = 0.5 (official lmd)
  The official `dfc_loss` uses -cos; we add the constant 1 so that perfect alignment gives 0
  (identical gradients).
- CutMix variant: the image target is the mixed image's embedding, the text target is mixed with
  the pixel ratio lam (official DFC_STAGE1/2 `update`).
- `kd_loss`: naive KD baseline, Hinton et al.: T^2 * KL(softmax(z_t / T) || softmax(z_s / T)).
- `clip_contrastive_loss`: symmetric InfoNCE used only to pre-train the synthetic stand-in teacher.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def alignment_loss(proj: torch.Tensor, img_emb: torch.Tensor, txt_emb: torch.Tensor,
                   lmd: float) -> torch.Tensor:
    """Align/Distill loss (Sec. 4.1-4.2; official `dfc_loss`).

    Args:
        proj: [B, D] student features (projected); normalised inside (cosine).
        img_emb: [B, D] teacher image embeddings of the same images.
        txt_emb: [B, D] teacher text embeddings of the labels' class prompts.
        lmd: weight of the image term; 1 - lmd weighs the text term.
    Returns:
        scalar loss, 0 when proj, img_emb and txt_emb point the same way.
    """
    assert proj.shape == img_emb.shape == txt_emb.shape, (proj.shape, img_emb.shape, txt_emb.shape)
    cos_img = F.cosine_similarity(proj, img_emb, dim=-1)  # [B]
    cos_txt = F.cosine_similarity(proj, txt_emb, dim=-1)  # [B]
    return lmd * (1 - cos_img).mean() + (1 - lmd) * (1 - cos_txt).mean()


def _reference_alignment_loss(proj: torch.Tensor, img_emb: torch.Tensor, txt_emb: torch.Tensor,
                              lmd: float) -> torch.Tensor:
    """Per-sample loop version of `alignment_loss` (test oracle)."""
    terms = []
    for p, v, t in zip(proj, img_emb, txt_emb):
        p_hat, v_hat, t_hat = p / p.norm(), v / v.norm(), t / t.norm()
        terms.append(lmd * (1 - p_hat @ v_hat) + (1 - lmd) * (1 - p_hat @ t_hat))
    return torch.stack(terms).mean()


def cutmix_alignment_loss(proj: torch.Tensor, img_emb: torch.Tensor, txt_a: torch.Tensor,
                          txt_b: torch.Tensor, lam: float, lmd: float) -> torch.Tensor:
    """CutMix form: lam * L(txt_a) + (1 - lam) * L(txt_b); img_emb is of the mixed image."""
    return (lam * alignment_loss(proj, img_emb, txt_a, lmd)
            + (1 - lam) * alignment_loss(proj, img_emb, txt_b, lmd))


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator
               ) -> tuple[int, int, int, int, float]:
    """CutMix box (Yun et al. 2019) with area ~ (1 - lam); returns (y1, y2, x1, x2, lam_exact)
    where lam_exact = 1 - box area / image area (pixel ratio, as the official code)."""
    cut = np.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = rng.integers(height), rng.integers(width)
    y1, y2 = np.clip(cy - ch // 2, 0, height), np.clip(cy + ch // 2, 0, height)
    x1, x2 = np.clip(cx - cw // 2, 0, width), np.clip(cx + cw // 2, 0, width)
    lam_exact = 1 - (y2 - y1) * (x2 - x1) / (height * width)
    return int(y1), int(y2), int(x1), int(x2), float(lam_exact)


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Hinton KD: T^2 * KL(p_t || p_s) with p = softmax(logits / T), mean over the batch.

    Args:
        student_logits, teacher_logits: [B, C].
        temperature: T > 0.
    """
    assert student_logits.shape == teacher_logits.shape, (student_logits.shape,
                                                          teacher_logits.shape)
    log_p_s = F.log_softmax(student_logits / temperature, dim=-1)  # [B, C]
    log_p_t = F.log_softmax(teacher_logits / temperature, dim=-1)  # [B, C]
    kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)  # [B]
    return temperature**2 * kl.mean()


def clip_contrastive_loss(img_emb: torch.Tensor, txt_emb: torch.Tensor, logit_scale: torch.Tensor,
                          match: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric CLIP InfoNCE on normalised embeddings [B, D].

    match [B, B] (optional): match[i, j] = 1 when caption j describes image i; every match is a
    positive (soft targets). Needed on the synthetic set, where a batch holds many images of a
    class and captions such as "a circle." fit all of them. Default: the identity (plain CLIP).
    """
    logits = logit_scale * img_emb @ txt_emb.t()  # [B(images), B(captions)]
    if match is None:
        match = torch.eye(len(img_emb), device=img_emb.device)
    match = match.float()
    t_img = match / match.sum(1, keepdim=True).clamp(min=1)  # image -> caption targets
    t_txt = match.t() / match.t().sum(1, keepdim=True).clamp(min=1)  # caption -> image targets
    loss_i = -(t_img * F.log_softmax(logits, dim=-1)).sum(-1).mean()
    loss_t = -(t_txt * F.log_softmax(logits.t(), dim=-1)).sum(-1).mean()
    return (loss_i + loss_t) / 2
