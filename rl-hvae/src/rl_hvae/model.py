"""Hierarchical VAE with every deterministic skip live (`arch_skips = "intended"`).

Shapes: B batch, C channels, H W image, Dz latent units, L levels (level 1 = bottom).

The ladder of hvae-oodd's "VAE" stage as its design intends it, with this repository's own
blocks (the network the official code actually builds is `released.ReleasedHVAE`). Per level l:
  inference   h_l = Dq_l(u_{l-1} + h_{l-1}),   q(z_l | h_l)  -> u_l = proj_q(z_l)
  generation  g_l = proj_p(z_l) + d_l,         d_{l-1} = Dp_l(g_l),   p(z_{l-1} | d_{l-1})
with u_0 = stem(x), h_0 = 0, d_L = 0 and p(z_L) = N(0, I). Dq_l is a stack of residual conv
blocks (the last one strided); Dp_l mirrors it with transposed convolutions. The "+ h_{l-1}" /
"+ d_l" terms are the deterministic skip connections, live at every level (so z_2..z_L can see x
without going through z_1), unlike the released network's. Other differences from it: a stem
conv, 1x1 Gaussian layers, strided-conv / nearest-upsampling shortcuts, default weight-norm init.
`HVAEArch` is shared by both networks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .distributions import Gaussian

_MIN_STD = 1e-3  # floor on the Gaussian scale, keeps log-densities finite


@dataclass(frozen=True)
class HVAEArch:
    """Architecture of the hierarchical VAE (the model's own small dataclass)."""

    in_channels: int = 1
    image_size: int = 28
    channels: int = 64
    blocks_per_stage: int = 3
    stage_strides: tuple[int, ...] = (2, 2, 1, 1, 1)
    stage_kernels: tuple[int, ...] = (5, 3, 3, 3, 3)
    conv_latent_channels: int = 8
    dense_latents: tuple[int, ...] = (64, 32, 16, 8)
    likelihood: str = "bernoulli"  # bernoulli | discretized_logistic
    latent_sizes: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        levels = 1 + len(self.dense_latents)
        if len(self.stage_strides) != levels or len(self.stage_kernels) != levels:
            raise ValueError(
                f"stage_strides {self.stage_strides} and stage_kernels {self.stage_kernels} need "
                f"one entry per latent level ({levels} = 1 conv latent + "
                f"{len(self.dense_latents)} dense)")
        size = self.image_size
        for s in self.stage_strides:
            if size % s:
                raise ValueError(f"image size {self.image_size} is not divisible by strides "
                                 f"{self.stage_strides}")
            size //= s

    @property
    def n_levels(self) -> int:
        return 1 + len(self.dense_latents)


def _conv(c_in: int, c_out: int, k: int, stride: int = 1, transposed: bool = False) -> nn.Module:
    if transposed and stride > 1:
        conv = nn.ConvTranspose2d(c_in, c_out, k, stride, padding=k // 2, output_padding=stride - 1)
    else:
        conv = nn.Conv2d(c_in, c_out, k, stride, padding=k // 2)
    return weight_norm(conv)  # the official config sets weightnorm=True on every block


class ResBlock(nn.Module):
    """x -> resample(x) + conv(act(conv(act(x)))); stride > 1 down- (up-, if transposed) samples."""

    def __init__(self, channels: int, kernel: int, stride: int, transposed: bool) -> None:
        super().__init__()
        self.conv1 = _conv(channels, channels, kernel, stride, transposed)
        self.conv2 = _conv(channels, channels, kernel)
        self.act = nn.ReLU()
        if stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        elif transposed:
            self.shortcut = nn.Upsample(scale_factor=stride, mode="nearest")
        else:
            self.shortcut = _conv(channels, channels, 1, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, C, H, W] -> [B, C, H', W'] (H' = H/stride, or H*stride when transposed)."""
        return self.shortcut(x) + self.conv2(self.act(self.conv1(self.act(x))))


def _stage(arch: HVAEArch, level: int, transposed: bool) -> nn.Sequential:
    k, s = arch.stage_kernels[level], arch.stage_strides[level]
    strides = [1] * (arch.blocks_per_stage - 1) + [s]  # the last block of a stage is strided
    if transposed:
        strides = strides[::-1]
    return nn.Sequential(*[ResBlock(arch.channels, k, st, transposed) for st in strides])


class GaussianLayer(nn.Module):
    """Maps a feature map to a diagonal Gaussian: conv (1x1) for the conv level, linear otherwise.

    Also owns the projection of a latent sample back to a feature map (AsFeatureMap).
    """

    def __init__(self, feat_shape: tuple[int, int, int], latent: int, conv: bool,
                 with_params: bool = True, with_feat: bool = True) -> None:
        super().__init__()
        c, h, w = feat_shape
        self.conv, self.feat_shape, self.latent = conv, feat_shape, latent
        layer = nn.Conv2d if conv else nn.Linear
        n_in, n_feat = (c, c) if conv else (c * h * w, c * h * w)
        # the top level's inference layer needs no projection: no stage is above it
        self.to_feat = (weight_norm(nn.Conv2d(latent, c, 1) if conv else nn.Linear(latent, n_feat))
                        if with_feat else None)
        # the top level's generative layer has no parameters: p(z_L) is the fixed N(0, I)
        self.to_params = (weight_norm(layer(n_in, 2 * latent, *((1,) if conv else ())))
                          if with_params else None)

    def forward(self, feat: torch.Tensor) -> Gaussian:
        """feat: [B, C, H, W] -> Gaussian over [B, latent(, H, W)]."""
        params = self.to_params(feat if self.conv else feat.flatten(1))
        mean, pre_std = params.chunk(2, dim=1)
        return Gaussian(mean, nn.functional.softplus(pre_std) + _MIN_STD)

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """z: [B, latent(, H, W)] -> feature map [B, C, H, W]."""
        feat = self.to_feat(z)
        return feat if self.conv else feat.view(-1, *self.feat_shape)


@dataclass
class Pass:
    """Everything one inference + generation pass produces (levels ordered bottom -> top)."""

    logits: torch.Tensor  # likelihood parameters, [B, C_out, H, W]
    z: list[torch.Tensor]  # latents used by the generator, per level
    posteriors: list[Gaussian]  # q(z_l | .), per level
    priors: list[Gaussian]  # p(z_l | z_{>l}) as met on this pass, per level


class LadderPasses(nn.Module):
    """The passes both networks share (`HierarchicalVAE`, `released.ReleasedHVAE`): a subclass
    sets `self.arch` and provides `infer(x)` and `generate(z_in, batch, use_mode=False)`."""

    arch: HVAEArch

    @property
    def n_levels(self) -> int:
        return self.arch.n_levels

    def forward(self, x: torch.Tensor, n_prior_levels: int = 0) -> Pass:
        """Full pass; the lowest `n_prior_levels` levels are decoded from the prior (skip path).

        Args:
            x: [B, C, H, W] in [0, 1].
            n_prior_levels: 0 = ordinary reconstruction; n = skip-generative path that explains x
                from z_{n+1..L} only (Sec. 4.2 of the paper, `decode_from_p` in the code).
        """
        posteriors, samples = self.infer(x)
        z_in = [None if lvl < n_prior_levels else z for lvl, z in enumerate(samples)]
        logits, used, priors = self.generate(z_in, x.shape[0])
        return Pass(logits, used, posteriors, priors)

    @torch.no_grad()
    def sample(self, n: int, use_mode: bool = False) -> torch.Tensor:
        """Ancestral samples from the prior -> likelihood parameters [n, C_out, H, W]."""
        return self.generate([None] * self.n_levels, n, use_mode=use_mode)[0]


class HierarchicalVAE(LadderPasses):
    """L-level ladder-free hierarchical VAE (official "VAE" model type)."""

    def __init__(self, arch: HVAEArch) -> None:
        super().__init__()
        self.arch = arch
        c = arch.channels
        self.stem = weight_norm(nn.Conv2d(arch.in_channels, c, 3, padding=1))
        self.q_stages = nn.ModuleList([_stage(arch, i, False) for i in range(arch.n_levels)])
        self.p_stages = nn.ModuleList([_stage(arch, i, True) for i in range(arch.n_levels)])
        size, layers = arch.image_size, []
        latents = (arch.conv_latent_channels, *arch.dense_latents)
        for i, s in enumerate(arch.stage_strides):
            size //= s
            top = i == arch.n_levels - 1
            layers.append((GaussianLayer((c, size, size), latents[i], conv=i == 0,
                                         with_feat=not top),
                           GaussianLayer((c, size, size), latents[i], conv=i == 0,
                                         with_params=not top)))
        self.q_layers = nn.ModuleList([q for q, _ in layers])
        self.p_layers = nn.ModuleList([p for _, p in layers])  # p_layers[l] gives p(z_l | d_l)
        self.top_shape = (c, size, size)
        out_c = arch.in_channels * (1 if arch.likelihood == "bernoulli" else 2)
        self.head = weight_norm(nn.Conv2d(c, out_c, 3, padding=1))

    def data_init(self, x: torch.Tensor) -> None:
        """No data-dependent initialisation in this network (see `ReleasedHVAE.data_init`)."""

    def infer_level(self, level: int, u: torch.Tensor,
                    skip: torch.Tensor | None) -> tuple[Gaussian, torch.Tensor]:
        """q(z_l | .) from the stage input u (stem(x) or the projected z_{l-1}) and the skip
        input h_{l-1} (None for level 1). Returns the posterior and the stage output h_l."""
        h = self.q_stages[level](u if skip is None else u + skip)  # [B, C, H_l, W_l]
        return self.q_layers[level](h), h

    def infer(self, x: torch.Tensor,
              use_mode: bool = False) -> tuple[list[Gaussian], list[torch.Tensor]]:
        """Bottom-up pass. x: [B, C, H, W] in [0, 1]. Returns q(z_l|.) and samples (or means)."""
        u, h_prev = self.stem(2 * x - 1), None
        posteriors, samples = [], []
        for level, q in enumerate(self.q_layers):
            post, h = self.infer_level(level, u, h_prev)
            z = post.mean if use_mode else post.rsample()
            posteriors.append(post)
            samples.append(z)
            if q.to_feat is not None:
                u, h_prev = q.project(z), h
        return posteriors, samples

    def generate(self, z_post: list[torch.Tensor | None], batch: int,
                 use_mode: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], list[Gaussian]]:
        """Top-down pass. Level l uses z_post[l] when given, else the prior's mode (or a sample).

        Args:
            z_post: per level (bottom -> top) a latent [B, ...] or None ("decode from p").
            batch: B, needed when the top level is decoded from the prior.
            use_mode: take the mode of p(z_l | .) for levels decoded from the prior.
        Returns:
            logits [B, C_out, H, W], the latents used per level, and the priors per level.
        """
        device = self.head.bias.device
        d = torch.zeros(batch, *self.top_shape, device=device)  # d_L = 0: no skip above the top
        top_dim = self.q_layers[-1].latent
        priors: list[Gaussian] = [None] * self.n_levels  # type: ignore[list-item]
        used: list[torch.Tensor] = [None] * self.n_levels  # type: ignore[list-item]
        for level in reversed(range(self.n_levels)):
            if level == self.n_levels - 1:
                zeros = torch.zeros(batch, top_dim, device=device)
                prior = Gaussian(zeros, torch.ones_like(zeros))  # p(z_L) = N(0, I)
            else:
                prior = self.p_layers[level](d)
            z = z_post[level]
            if z is None:
                z = prior.mean if use_mode else prior.rsample()
            priors[level], used[level] = prior, z
            d = self.p_stages[level](self.p_layers[level].project(z) + d)  # d_{l-1}, Dp_l(g_l)
        return self.head(d), used, priors

