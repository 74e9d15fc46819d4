"""StyleGAN2 building blocks (Karras et al. 2020), written from the paper's equations.

GSM's generator is a StyleGAN2 mapping + synthesis network whose output "image" is the texture
stack (Sec. 3.2), and its discriminator is StyleGAN2's residual D with projection conditioning
(EG3D's dual D without the raw branch). Simplifications: bilinear resampling instead of the [1,3,3,1]
FIR filter (upfirdn2d), no fp16 layers; both are speed/quality knobs, not method components.

Shapes: B batch, W w_dim, C channels, H x W spatial, L number of ws.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (StyleGAN2 `FullyConnectedLayer`)."""

    def __init__(self, in_features: int, out_features: int, lr_mul: float = 1.0,
                 bias_init: float = 0.0, activation: bool = False, init_scale: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * init_scale / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * math.sqrt(2) if self.activation else x


class MappingNetwork(nn.Module):
    """z [B, Z] (+ optional c [B, Cc]) -> ws [B, L, W] (normalised input, lr_mul 0.01)."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, depth: int = 2,
                 lr_mul: float = 0.01):
        super().__init__()
        self.num_ws, self.c_dim = num_ws, c_dim
        self.embed = EqualLinear(c_dim, w_dim) if c_dim > 0 else None
        in_dim = z_dim + (w_dim if c_dim > 0 else 0)
        self.layers = nn.ModuleList(
            [EqualLinear(in_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mul, activation=True)
             for i in range(depth)])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                update_w_avg: bool = False) -> torch.Tensor:
        parts = [z] if z.shape[1] > 0 else []
        if self.embed is not None:
            parts.append(self.embed(c))
        # normalise each input to unit second moment (StyleGAN2 `normalize_2nd_moment`)
        x = torch.cat([p * torch.rsqrt(p.square().mean(1, keepdim=True) + 1e-8) for p in parts], 1)
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:  # running mean of w for truncation (w_avg_beta = 0.995)
            self.w_avg.copy_(x.detach().mean(0).lerp(self.w_avg, 0.995))
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [B, L, W]
        if truncation_psi != 1:
            ws = self.w_avg.lerp(ws, truncation_psi)
        return ws


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True) -> torch.Tensor:
    """StyleGAN2 Eq. 1-3: per-sample weight modulation + demodulation as a grouped conv.

    x: [B, Cin, H, W], weight: [Cout, Cin, k, k], styles: [B, Cin] -> [B, Cout, H, W].
    """
    batch, in_ch, height, width = x.shape
    w = weight[None] * styles[:, None, :, None, None]  # [B, Cout, Cin, k, k]
    if demodulate:
        w = w * torch.rsqrt(w.square().sum([2, 3, 4], keepdim=True) + 1e-8)
    out_ch, k = weight.shape[0], weight.shape[-1]
    x = x.reshape(1, batch * in_ch, height, width)
    out = F.conv2d(x, w.reshape(batch * out_ch, in_ch, k, k), padding=k // 2, groups=batch)
    return out.reshape(batch, out_ch, height, width)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + noise + bias + lrelu, optional 2x upsampling before the conv."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.up = up
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.resolution = resolution

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: bool = True) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        styles = self.affine(w)  # [B, Cin]
        x = modulated_conv2d(x, self.weight / math.sqrt(self.weight[0].numel()), styles)
        if noise:
            x = x + torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        return F.leaky_relu(x + self.bias[None, :, None, None], 0.2) * math.sqrt(2)


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation (the skip-architecture output layer)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) / math.sqrt(self.weight[0].numel())
        return modulated_conv2d(x, self.weight, styles, demodulate=False) + self.bias[None, :, None, None]


def channels_at(res: int, channel_base: int, channel_max: int) -> int:
    return min(channel_base // res, channel_max)


class SynthesisNetwork(nn.Module):
    """Constant 4x4 input -> [B, out_ch, R, R] through skip-connected ToRGB outputs."""

    def __init__(self, w_dim: int, resolution: int, out_ch: int, channel_base: int,
                 channel_max: int):
        super().__init__()
        assert resolution >= 4 and resolution & (resolution - 1) == 0, resolution
        self.resolutions = [2 ** i for i in range(2, int(np.log2(resolution)) + 1)]
        ch = {r: channels_at(r, channel_base, channel_max) for r in self.resolutions}
        self.const = nn.Parameter(torch.randn(ch[4], 4, 4))
        self.convs, self.torgbs = nn.ModuleList(), nn.ModuleList()
        for r in self.resolutions:
            if r == 4:
                self.convs.append(nn.ModuleList([SynthesisLayer(ch[4], ch[4], w_dim, 4)]))
            else:
                self.convs.append(nn.ModuleList([
                    SynthesisLayer(ch[r // 2], ch[r], w_dim, r, up=True),
                    SynthesisLayer(ch[r], ch[r], w_dim, r)]))
            self.torgbs.append(ToRGB(ch[r], out_ch, w_dim))
        self.num_ws = sum(len(c) for c in self.convs) + 1  # + 1 for the last ToRGB

    def forward(self, ws: torch.Tensor, noise: bool = True) -> torch.Tensor:
        x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        img, w_idx = None, 0
        for convs, torgb in zip(self.convs, self.torgbs):
            for conv in convs:
                x = conv(x, ws[:, w_idx], noise=noise)
                w_idx += 1
            y = torgb(x, ws[:, w_idx])  # ToRGB reuses the next w (StyleGAN2 convention)
            img = y if img is None else F.interpolate(
                img, scale_factor=2, mode="bilinear", align_corners=False) + y
        return img


class EqualConv2d(nn.Module):
    """Conv layer with equalised learning rate (StyleGAN2 `Conv2dLayer`): N(0, 1) weights scaled
    by 1/sqrt(fan_in) at run time, so Adam's step is the same fraction of every weight. Plain
    `nn.Conv2d` at 512 channels with D's lr 0.002 moved D's logits by ~1e3 in 2 steps (found by
    the paper-preset smoke run)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_ch * kernel * kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.weight_gain, self.bias,
                        padding=self.weight.shape[-1] // 2)


class DiscriminatorBlock(nn.Module):
    """Residual block: conv, conv + 2x downsample, 1x1 skip, scaled by 1/sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3)
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.avg_pool2d(self.skip(x), 2)
        x = F.leaky_relu(self.conv0(x), 0.2) * math.sqrt(2)
        x = F.leaky_relu(F.avg_pool2d(self.conv1(x), 2), 0.2) * math.sqrt(2)
        return (x + y) / math.sqrt(2)


class Discriminator(nn.Module):
    """StyleGAN2 residual D with minibatch-stddev and projection conditioning on c.

    Args: img [B, 3, R, R] in [-1, 1], c [B, c_dim] -> logits [B, 1].
    """

    def __init__(self, resolution: int, c_dim: int, channel_base: int, channel_max: int,
                 mbstd_group: int = 4, cmap_dim: int = 64):
        super().__init__()
        res = [2 ** i for i in range(int(np.log2(resolution)), 2, -1)]
        ch = {r: channels_at(r, channel_base, channel_max) for r in res + [4]}
        # equalised learning rate everywhere, as StyleGAN2's D (Conv2dLayer/FullyConnectedLayer)
        self.from_rgb = EqualConv2d(3, ch[resolution], 1)
        self.blocks = nn.ModuleList([DiscriminatorBlock(ch[r], ch[r // 2]) for r in res])
        self.mbstd_group = mbstd_group
        self.conv = EqualConv2d(ch[4] + 1, ch[4], 3)
        self.fc = EqualLinear(ch[4] * 16, ch[4])
        self.c_dim = c_dim
        self.out = EqualLinear(ch[4], cmap_dim if c_dim > 0 else 1)
        self.cmap = MappingNetwork(0, c_dim, cmap_dim, 1, depth=2, lr_mul=1.0) if c_dim else None
        self.cmap_dim = cmap_dim

    def minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        batch, ch, h, w = x.shape
        group = min(self.mbstd_group, batch)
        while batch % group:
            group -= 1
        y = x.reshape(group, -1, ch, h, w)  # [G, B/G, C, H, W]
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt().mean([1, 2, 3])  # [B/G]
        y = y.reshape(-1, 1, 1, 1).repeat(group, 1, h, w)  # [B, 1, H, W]
        return torch.cat([x, y], 1)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.from_rgb(img), 0.2) * math.sqrt(2)
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.conv(self.minibatch_std(x)), 0.2) * math.sqrt(2)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2) * math.sqrt(2)
        x = self.out(x)
        if self.cmap is not None:  # projection discriminator (Miyato & Koyama 2018)
            cm = self.cmap(torch.zeros(c.shape[0], 0, device=c.device), c)[:, 0]
            x = (x * cm).sum(1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x
