"""The hierarchical VAE exactly as the released code builds it (`arch_skips = "released"`).

Written from a reading of ruyianry/rep_hierarchy_rl@d478bac (hvae-oodd's "VAE" DeepVAE with the
FashionMNIST script's settings); no code is copied. Shapes: B batch, C channels, H W image.

What the released network does, and this module reproduces (README, "Released-code quirks"):
- Residual block (hvae-oodd ResBlockConv2d, not gated): y = conv1(act(x)) (stride 1); the skip
  input `aux` is added as y + aux_op(act(aux)) ONLY when aux_op exists, i.e. when the skip's shape
  differs from conv1's output. The released line `y = y + aux_op(...) if aux_op is not None else y`
  parses as a conditional expression, so a skip of the same shape is dropped. Then
  y = conv2(act(y)) (strided or transposed), plus the shortcut: x zero-padded to the output's
  channels, average-pooled (3x3, parameter-free) when the block downsamples, and no shortcut at
  all when it upsamples or is the first block of a generative stage / of the bottom stage.
- TensorFlow "same" padding (extra row/column at the bottom/right), transposed convolutions
  cropped the same way; weight norm on every conv/dense layer, with the data-dependent
  initialisation of Salimans & Kingma (2016) run on the first batch that reaches each layer.
- Gaussian layers: act -> 3x3 conv (level 1) or dense (levels 2..L) -> (mu, softplus_b(s)) with
  b = ln 2 so that softplus_b(0) = 1, sigma clamped at 1e-6; p(z_L) = N(0, I).
- Latent -> feature map: identity for the conv latent of level 1, a weight-normed dense layer
  for dense latents. Likelihood: act -> 3x3 conv. Activation ReLU (the script's default).
- Skip wiring (VaeStage): each block of inference stage l gets the output h_{l-1} of stage l-1;
  block j of generative stage l gets the output of block j of generative stage l+1.
With constant width this leaves the inference path a pure chain x -> z1 -> ... -> zL, and in
generation only the non-strided blocks of the stages that upsample use their skip.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .distributions import Gaussian
from .model import HVAEArch, LadderPasses

Shape = tuple[int, int, int]  # (C, H, W) without the batch
_MIN_SCALE = 1e-6  # sigma clamp of hvae-oodd's Gaussian layers
_SOFTPLUS_BETA = math.log(2.0)  # softplus_b(0) = 1: sigma starts at 1


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'same' padding (before, after) of one spatial dim: out = ceil(size / stride)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + kernel - size)
    return total // 2, total - total // 2


class WNConv(nn.Module):
    """Weight-normed conv with 'same' padding (transposed: upsample by `stride`), data-dependent
    init on its first call. Maps [B, C_in, H, W] -> [B, c_out, H', W'] with H' = H / stride, or
    H * stride when transposed."""

    def __init__(self, in_shape: Shape, c_out: int, kernel: int, stride: int = 1,
                 transposed: bool = False) -> None:
        super().__init__()
        c_in, h, w = in_shape
        self.transposed = transposed and stride > 1  # stride 1: a plain conv, as hvae-oodd
        if self.transposed:
            conv: nn.Module = nn.ConvTranspose2d(c_in, c_out, kernel, stride)
            extra = kernel - stride  # the full output is (H-1)*s + k; crop it to H*s
            self.crop = (extra // 2, extra - extra // 2)
            self.out_shape: Shape = (c_out, h * stride, w * stride)
        else:
            conv = nn.Conv2d(c_in, c_out, kernel, stride)
            (t, b), (le, r) = _same_pad(h, kernel, stride), _same_pad(w, kernel, stride)
            self.pad = (le, r, t, b)
            self.out_shape = (c_out, -(-h // stride), -(-w // stride))
        self.conv = weight_norm(conv, dim=1 if self.transposed else 0)
        self.register_buffer("initialized", torch.tensor(False))
        self._check_init = True  # python-side flag: read the buffer once, not every call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transposed:
            x = F.pad(x, self.pad)
        if self._check_init:
            if not bool(self.initialized):
                _data_init(self.conv, x, channel_dim=1)
                self.initialized.fill_(True)
            self._check_init = False
        y = self.conv(x)
        if self.transposed:
            (a, b), (h, w) = self.crop, y.shape[-2:]
            y = y[..., a:h - b, a:w - b]  # [B, c_out, H*s, W*s]
        return y


class WNDense(nn.Module):
    """Weight-normed dense layer on the flattened input, data-dependent init.
    [B, ...] -> [B, n_out]."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.linear = weight_norm(nn.Linear(n_in, n_out), dim=0)
        self.register_buffer("initialized", torch.tensor(False))
        self._check_init = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if self._check_init:
            if not bool(self.initialized):
                _data_init(self.linear, x, channel_dim=1)
                self.initialized.fill_(True)
            self._check_init = False
        return self.linear(x)


@torch.no_grad()
def _data_init(layer: nn.Module, x: torch.Tensor, channel_dim: int) -> None:
    """Weight-norm data-dependent init (Salimans & Kingma 2016, Sec. 3): with v random and g = 1,
    set g = 1 / std and b = -mean / std of the layer's outputs on x, so that every output unit
    starts with zero mean and unit variance over this batch. Statistics are taken on the raw
    layer output (before the crop of a transposed conv, as hvae-oodd)."""
    if x.shape[0] < 2 and x.dim() == 2:
        raise ValueError("data-dependent weight-norm init needs a batch of at least 2 examples")
    g, v = layer.parametrizations.weight.original0, layer.parametrizations.weight.original1
    nn.init.kaiming_normal_(v, mode="fan_in", nonlinearity="relu")
    g.fill_(1.0)
    layer.bias.zero_()
    y = layer(x)
    dims = [d for d in range(y.dim()) if d != channel_dim]
    mean, var = y.mean(dims), y.var(dims)  # [c_out] each (unbiased variance, as hvae-oodd)
    scale = 1.0 / torch.sqrt(var + 1e-8)
    g.copy_(scale.view(g.shape))
    layer.bias.copy_(-mean * scale)


class ReleasedBlock(nn.Module):
    """hvae-oodd's residual block (not gated), with the released handling of the skip input."""

    def __init__(self, in_shape: Shape, channels: int, kernel: int, stride: int, transposed: bool,
                 residual: bool, aux_shape: Shape | None) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.residual = residual
        self.conv1 = WNConv(in_shape, channels, kernel)
        mid = self.conv1.out_shape
        self.aux_op: nn.Module | None = None
        if aux_shape is not None and aux_shape[1:] > mid[1:]:  # larger skip: strided conv
            self.aux_op = WNConv(aux_shape, channels, kernel, aux_shape[1] // mid[1])
        elif aux_shape is not None and aux_shape[1:] < mid[1:]:  # smaller skip: transposed conv
            self.aux_op = WNConv(aux_shape, channels, kernel, mid[1] // aux_shape[1], True)
        elif aux_shape is not None and aux_shape[0] != mid[0]:  # channels only: 1x1 conv
            self.aux_op = WNConv(aux_shape, channels, 1)
        # else: same shape as conv1's output, aux_op stays None and the skip is never added
        self.conv2 = WNConv(mid, channels, kernel, stride, transposed)
        self.out_shape = self.conv2.out_shape
        self.pool = None
        if residual and self.out_shape[1] < in_shape[1]:  # downsampling shortcut, no parameters
            self.pool = nn.AvgPool2d(3, stride=in_shape[1] // self.out_shape[1])
            self.pool_pad = (_same_pad(in_shape[2], 3, in_shape[2] // self.out_shape[2])
                             + _same_pad(in_shape[1], 3, in_shape[1] // self.out_shape[1]))
        if self.out_shape[1] > in_shape[1]:
            self.residual = False  # upsampling blocks have no shortcut (hvae-oodd disables it)
        self.channel_pad = self.out_shape[0] - in_shape[0]

    def forward(self, x: torch.Tensor, aux: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, C_in, H, W], aux: skip input or None -> [B, C, H', W']."""
        y = self.conv1(self.act(x) if self.residual else x)
        if self.aux_op is not None:  # the released behaviour: a same-shape skip is dropped
            y = y + self.aux_op(self.act(aux))
        y = self.conv2(self.act(y))
        if not self.residual:
            return y
        if self.channel_pad:  # zero channels appended (or channels cut), as hvae-oodd
            x = F.pad(x, (0, 0, 0, 0, 0, self.channel_pad))
        if self.pool is not None:
            x = self.pool(F.pad(x, self.pool_pad))  # (left, right, top, bottom) 'same'
        return y + x


class BlockStack(nn.Module):
    """A stage's residual blocks with hvae-oodd's skip routing (DeterministicModules): skips are
    consumed from the end of the list, and each block's output is put at its front."""

    def __init__(self, in_shape: Shape, arch: HVAEArch, level: int, transposed: bool,
                 first_residual: bool, aux_shape: Shape | None) -> None:
        super().__init__()
        n, k, s = arch.blocks_per_stage, arch.stage_kernels[level], arch.stage_strides[level]
        strides = [s] + [1] * (n - 1) if transposed else [1] * (n - 1) + [s]
        blocks, shape = [], in_shape
        for j, st in enumerate(strides):
            blocks.append(ReleasedBlock(shape, arch.channels, k, st, transposed,
                                        first_residual or j > 0, aux_shape))
            shape = blocks[-1].out_shape
        self.blocks = nn.ModuleList(blocks)
        self.use_skips = aux_shape is not None
        self.out_shape = shape

    def forward(self, x: torch.Tensor,
                skips: list[torch.Tensor] | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Returns the stage output and the list of block outputs (last block first)."""
        pending = list(skips) if self.use_skips and skips is not None else []
        outs: list[torch.Tensor] = []
        for block in self.blocks:
            x = block(x, pending.pop() if self.use_skips else None)  # block j gets skips[-1-j]
            outs.insert(0, x)
        return x, outs


class GaussianParams(nn.Module):
    """act -> 3x3 conv (conv latent) or dense (dense latent) -> N(mu, softplus_b(s))."""

    def __init__(self, in_shape: Shape, latent: int, conv: bool) -> None:
        super().__init__()
        self.act, self.conv, self.latent = nn.ReLU(), conv, latent
        self.net = (WNConv(in_shape, 2 * latent, 3) if conv
                    else WNDense(math.prod(in_shape), 2 * latent))

    def forward(self, feat: torch.Tensor) -> Gaussian:
        """feat: [B, C, H, W] -> Gaussian over [B, latent, H, W] (conv) or [B, latent] (dense)."""
        mean, pre = self.net(self.act(feat)).chunk(2, dim=1)
        std = F.softplus(pre, beta=_SOFTPLUS_BETA).clamp(min=_MIN_SCALE)
        return Gaussian(mean, std)


class ToFeatureMap(nn.Module):
    """Latent -> feature map: identity for a conv latent, weight-normed dense otherwise."""

    def __init__(self, latent: int, target: Shape, conv: bool) -> None:
        super().__init__()
        self.net = None if conv else WNDense(latent, math.prod(target))
        self.out_shape = (latent, *target[1:]) if conv else target

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z if self.net is None else self.net(z).view(-1, *self.out_shape)  # [B, C, H, W]


class ReleasedHVAE(LadderPasses):
    """The released L-level hierarchical VAE; same interface as `model.HierarchicalVAE`."""

    def __init__(self, arch: HVAEArch) -> None:
        super().__init__()
        self.arch = arch
        latents = (arch.conv_latent_channels, *arch.dense_latents)
        q_stages, q_params, q_proj, p_stages, p_params, p_proj = [], [], [], [], [], []
        shape: Shape = (arch.in_channels, arch.image_size, arch.image_size)
        h_prev: Shape | None = None
        for level in range(arch.n_levels):
            top, conv = level == arch.n_levels - 1, level == 0
            q_stages.append(BlockStack(shape, arch, level, False, level > 0, h_prev))
            h = q_stages[-1].out_shape
            q_params.append(GaussianParams(h, latents[level], conv))
            p_params.append(None if top else GaussianParams(h, latents[level], conv))
            q_proj.append(ToFeatureMap(latents[level], h, conv))
            p_proj.append(ToFeatureMap(latents[level], h, conv))
            p_stages.append(BlockStack(p_proj[-1].out_shape, arch, level, True, False,
                                       None if top else h))
            shape, h_prev = q_proj[-1].out_shape, h
        # hvae-oodd also builds (and runs) a q-projection of the top latent that nothing reads;
        # it is left out here (31,360 of the official 5,340,258 parameters)
        self.q_stages, self.p_stages = nn.ModuleList(q_stages), nn.ModuleList(p_stages)
        self.q_layers, self.q_proj = nn.ModuleList(q_params), nn.ModuleList(q_proj[:-1])
        self.p_layers = nn.ModuleList(p_params[:-1])  # p(z_l | d) for l < L
        self.p_proj = nn.ModuleList(p_proj)
        self.top_dim = latents[-1]
        out_c = arch.in_channels * (1 if arch.likelihood == "bernoulli" else 2)
        self.head_act, self.head = nn.ReLU(), WNConv(p_stages[0].out_shape, out_c, 3)

    @torch.no_grad()
    def data_init(self, x: torch.Tensor) -> None:
        """Run the data-dependent weight-norm init on batch x (a full pass), if not done yet."""
        self(x)

    def infer_level(self, level: int, u: torch.Tensor,
                    skip: torch.Tensor | None) -> tuple[Gaussian, torch.Tensor]:
        """q(z_l | .) from the stage input u (x or the projected z_{l-1}) and the skip input
        (h_{l-1}, None for level 1). Returns the posterior and the stage output h_l."""
        skips = None if skip is None else [skip] * len(self.q_stages[level].blocks)
        h, _ = self.q_stages[level](u, skips)  # [B, C, H_l, W_l]
        return self.q_layers[level](h), h

    def infer(self, x: torch.Tensor,
              use_mode: bool = False) -> tuple[list[Gaussian], list[torch.Tensor]]:
        """Bottom-up pass. x: [B, C, H, W] in [0, 1]. Returns q(z_l|.) and samples (or means)."""
        u, h = x, None
        posteriors, samples = [], []
        for level in range(self.n_levels):
            post, h = self.infer_level(level, u, h)
            z = post.mean if use_mode else post.rsample()
            posteriors.append(post)
            samples.append(z)
            if level < self.n_levels - 1:
                u = self.q_proj[level](z)
        return posteriors, samples

    def generate(self, z_post: list[torch.Tensor | None], batch: int,
                 use_mode: bool = True) -> tuple[torch.Tensor, list[torch.Tensor], list[Gaussian]]:
        """Top-down pass; level l uses z_post[l] when given, else the prior's mode (or a sample).
        Returns logits [B, C_out, H, W], the latents used and the priors, per level."""
        device = self.head.conv.bias.device
        priors: list[Gaussian] = [None] * self.n_levels  # type: ignore[list-item]
        used: list[torch.Tensor] = [None] * self.n_levels  # type: ignore[list-item]
        d, skips = None, None
        for level in reversed(range(self.n_levels)):
            if level == self.n_levels - 1:
                zeros = torch.zeros(batch, self.top_dim, device=device)
                prior = Gaussian(zeros, torch.ones_like(zeros))  # p(z_L) = N(0, I)
            else:
                prior = self.p_layers[level](d)
            z = z_post[level]
            if z is None:
                z = prior.mean if use_mode else prior.rsample()
            priors[level], used[level] = prior, z
            d, skips = self.p_stages[level](self.p_proj[level](z), skips)
        return self.head(self.head_act(d)), used, priors



_WN_NAMES = {"weight_g": "parametrizations.weight.original0",
             "weight_v": "parametrizations.weight.original1", "bias": "bias"}


def convert_official_state_dict(official: dict[str, torch.Tensor],
                                n_levels: int) -> dict[str, torch.Tensor]:
    """Rename the state dict of an official hvae-oodd "VAE" model (the `model_state_dict.pt`
    that its `model.save` writes) to this module's names, so official weights load with
    `ReleasedHVAE.load_state_dict(..., strict=True)`.

    Dropped: the fixed N(0, I) prior logits and softplus-inverse constants, and the top
    level's unused q-projection. Raises KeyError naming the first key it cannot place.
    """
    out: dict[str, torch.Tensor] = {}
    top = n_levels - 1
    stage_parts = {"q_deterministic": "q_stages.{l}.blocks",
                   "p_deterministic": "p_stages.{l}.blocks",
                   "stochastic.in_transform_q": "q_layers.{l}.net",
                   "stochastic.in_transform_p": "p_layers.{l}.net",
                   "q_projection.transform": "q_proj.{l}.net",
                   "p_projection.transform": "p_proj.{l}.net"}
    for key, value in official.items():
        parts = key.split(".")
        if parts[0] == "likelihood":  # likelihood.parameter_net.(initialized | conv.X)
            new = "head." + ".".join(parts[2:])
        elif parts[0] == "stages":
            level, rest = int(parts[1]), ".".join(parts[2:])
            if "std_activation_inverse" in rest or rest.endswith("prior_logits"):
                continue  # constants of the N(0, I) top prior / the softplus
            if level == top and rest.startswith("q_projection"):
                continue  # built by hvae-oodd, read by nothing
            prefix = next((p for p in stage_parts if rest.startswith(p + ".")), None)
            if prefix is None:
                raise KeyError(f"official key {key!r} has no counterpart")
            tail = rest[len(prefix) + 1:]
            if prefix.endswith("deterministic"):
                tail = tail.removeprefix("layers.")  # layers.{j}.conv1.conv.X -> {j}.conv1...
            new = stage_parts[prefix].format(l=level) + "." + tail
        else:
            raise KeyError(f"official key {key!r} has no counterpart")
        leaf = new.rsplit(".", 1)
        if leaf[-1] in _WN_NAMES:
            new = f"{leaf[0]}.{_WN_NAMES[leaf[-1]]}"
        out[new] = value.bool() if new.endswith("initialized") else value
    return out
