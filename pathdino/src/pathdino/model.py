"""PathDino ViT (Sec. 3.3: five ViT-S blocks, ~9 M parameters) and the DINO projection head.

Shapes: B batch, C=3 channels, H W image, P patch side, T = (H/P)(W/P) tokens (+1 CLS),
D embed dim, K head output dim (prototypes).

Architecture as in the official `PathDino.py` (itself DINO's `vision_transformer.py`): conv patch
embedding, learned position embedding (bicubic-interpolated for other input sizes exactly as the
official code and DINO's `interpolate_pos_encoding` do: `scale_factor = (n + 0.1) / N`), pre-norm
blocks with qkv bias, LayerNorm eps 1e-6, CLS token output. Written here from the description.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass(frozen=True)
class ViTConfig:
    img_size: int = 512  # official PathDino-512
    patch_size: int = 16
    embed_dim: int = 384
    depth: int = 5
    num_heads: int = 6
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    # Position-embedding resize for other input sizes: the official code (DINO's
    # interpolate_pos_encoding) passes scale_factor = (n + 0.1) / N to a bicubic resize of the
    # N x N grid to n x n; the 0.1 shifts the sampling grid slightly (DINO issue #8). 0.0 gives a
    # plain size=(n, n) resize, which the released weights were never run with.
    pos_interp_offset: float = 0.1


def drop_path(x: torch.Tensor, prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole residual branches per sample, rescale the rest."""
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        assert dim % num_heads == 0, (dim, num_heads)
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x: [B, T, D] -> [B, T, D] (and attention [B, heads, T, T] if asked)."""
        qkv = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, heads, T, d_head]
        if return_attention:
            attn = (q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5  # [B, heads, T, T]
            attn = attn.softmax(-1)
            out = attn @ v  # [B, heads, T, d_head]
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, T, d_head]
        out = self.proj(rearrange(out, "b h t d -> b t (h d)"))  # [B, T, D]
        return (out, attn) if return_attention else out


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """x: [B, T, D] -> [B, T, D]; with return_attention the block's [B, heads, T, T]."""
        if return_attention:
            _, attn = self.attn(self.norm1(x), return_attention=True)
            return attn
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class PathDinoViT(nn.Module):
    """Vision transformer backbone returning the CLS embedding [B, D]."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = cfg.embed_dim
        self.patch_embed = nn.Conv2d(3, cfg.embed_dim, cfg.patch_size, stride=cfg.patch_size)
        num_patches = (cfg.img_size // cfg.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, cfg.embed_dim))
        rates = torch.linspace(0, cfg.drop_path, cfg.depth).tolist()  # stochastic depth decay
        self.blocks = nn.ModuleList(
            Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(cfg.embed_dim, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        self.apply(_init_weights)

    def interpolate_pos_encoding(self, num_tokens: int, height: int, width: int) -> torch.Tensor:
        """Position embedding for an H x W input: [1, 1 + (H/P)(W/P), D].

        As the official PathDino.py / DINO: the stored N x N grid is resized bicubically
        (align_corners False) with scale_factor (h + offset) / N, (w + offset) / N, so the output
        is h x w (floor) but source pixels are sampled at (i + 0.5) N / (h + offset) - 0.5.
        """
        n_stored = self.pos_embed.shape[1] - 1
        if num_tokens - 1 == n_stored and height == width:
            return self.pos_embed
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        side = int(math.sqrt(n_stored))
        grid = rearrange(patch_pos, "one (h w) d -> one d h w", h=side)  # [1, D, s, s]
        h, w = height // self.cfg.patch_size, width // self.cfg.patch_size
        offset = self.cfg.pos_interp_offset
        if offset == 0.0:
            grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        else:
            grid = F.interpolate(grid, scale_factor=((h + offset) / side, (w + offset) / side),
                                 mode="bicubic", align_corners=False)
        assert grid.shape[-2:] == (h, w), (grid.shape, h, w)  # [1, D, h, w]
        return torch.cat([cls_pos, rearrange(grid, "one d h w -> one (h w) d")], dim=1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, H, W] -> tokens [B, 1 + T, D] with CLS and position embedding."""
        assert x.ndim == 4 and x.shape[1] == 3, x.shape
        b, _, h, w = x.shape
        assert h % self.cfg.patch_size == 0 and w % self.cfg.patch_size == 0, (h, w)
        t = rearrange(self.patch_embed(x), "b d h w -> b (h w) d")  # [B, T, D]
        t = torch.cat([self.cls_token.expand(b, -1, -1), t], dim=1)  # [B, 1+T, D]
        return t + self.interpolate_pos_encoding(t.shape[1], h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, H, W] ImageNet-normalised -> CLS embedding [B, D]."""
        t = self.tokens(x)
        for block in self.blocks:
            t = block(t)
        return self.norm(t)[:, 0]

    @torch.no_grad()
    def last_self_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention of the last block: [B, heads, 1+T, 1+T] (for attention-map figures)."""
        t = self.tokens(x)
        for block in self.blocks[:-1]:
            t = block(t)
        return self.blocks[-1](t, return_attention=True)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class DINOHead(nn.Module):
    """MLP (3 layers, GELU) -> L2-normalised bottleneck -> weight-normalised prototypes [B, K].

    The last layer is W = g * V / ||V|| row-wise; with norm_last_layer the gain g is fixed to 1
    (DINO's stabiliser), otherwise g is learned.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, norm_last_layer: bool = True) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim))
        self.apply(_init_weights)
        self.last_v = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.last_v, std=0.02)
        self.last_g = nn.Parameter(torch.ones(out_dim, 1), requires_grad=not norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, D] -> logits [B, K]."""
        z = F.normalize(self.mlp(x), dim=-1)  # [B, bottleneck]
        weight = self.last_g * F.normalize(self.last_v, dim=-1)  # [K, bottleneck]
        return z @ weight.t()


class MultiCropNet(nn.Module):
    """Backbone + head over a list of crops; crops of equal resolution share one forward."""

    def __init__(self, backbone: PathDinoViT, head: DINOHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        """crops: list of [B, 3, h_i, w_i] -> logits [len(crops) * B, K], crop-major order."""
        feats, start = [], 0
        while start < len(crops):
            end = start
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            feats.append(self.backbone(torch.cat(crops[start:end])))  # [(end-start) B, D]
            start = end
        return self.head(torch.cat(feats))


def build_student_teacher(vit: ViTConfig, out_dim: int, hidden_dim: int, bottleneck_dim: int,
                          norm_last_layer: bool) -> tuple[MultiCropNet, MultiCropNet]:
    """Student (stochastic depth) and teacher (no drop path, no gradients, same init)."""
    student = MultiCropNet(PathDinoViT(vit),
                           DINOHead(vit.embed_dim, out_dim, hidden_dim, bottleneck_dim,
                                    norm_last_layer))
    teacher_vit = ViTConfig(**{**vit.__dict__, "drop_path": 0.0})
    teacher = MultiCropNet(PathDinoViT(teacher_vit),
                           DINOHead(vit.embed_dim, out_dim, hidden_dim, bottleneck_dim, True))
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad_(False)
    return student, teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """theta_t <- m theta_t + (1 - m) theta_s (DINO Sec. 3.1, Eq. teacher update)."""
    for p_t, p_s in zip(teacher.parameters(), student.parameters(), strict=True):
        p_t.mul_(momentum).add_(p_s.detach(), alpha=1.0 - momentum)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def official_to_local_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official PathDino checkpoint (`PathDino512.pth`, DINO ViT names, optional
    `backbone.`/`module.` prefixes) to this module's parameter names."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if key.startswith("head."):
            continue  # the DINO projection head is not part of the feature extractor
        key = key.replace("patch_embed.proj.", "patch_embed.")
        key = key.replace(".mlp.fc1.", ".mlp.0.").replace(".mlp.fc2.", ".mlp.2.")
        out[key] = value
    return out


def load_official_weights(path: str, img_size: int = 512) -> PathDinoViT:
    """PathDino-512 backbone (ViTConfig defaults) with the released weights, loaded strictly.

    Accepts the released `PathDino512.pth`, a `backbone.`/`module.`-prefixed state dict or a DINO
    training checkpoint (its `teacher`); anything else is a CheckpointError.
    """
    from .runtime import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(path)  # plain weights_only load; format_version is not ours
    except CheckpointError as err:
        if "format_version" not in err.where:
            raise
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("teacher"), dict):
        state = state["teacher"]  # a full DINO training checkpoint
    model = PathDinoViT(ViTConfig(img_size=img_size))
    try:
        model.load_state_dict(official_to_local_keys(state), strict=True)
    except (RuntimeError, AttributeError, TypeError) as err:
        raise CheckpointError(f"{path} does not hold PathDino-512 weights ({type(err).__name__}: "
                              f"{str(err)[:160]})", "the released PathDino512.pth or a DINO "
                              "checkpoint of the pathdino architecture") from None
    return model.eval()
