"""Image metrics of the paper's evaluation: PSNR, SSIM, LPIPS (lpips package).

Shape legend: H W image, images are [H, W, 3] floats in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(pred: Tensor, gt: Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = torch.mean((pred - gt) ** 2).clamp_min(1e-12)
    return float(-10.0 * torch.log10(mse))


def ssim(pred: Tensor, gt: Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, mean over channels
    and valid pixels (the definition used by NeRF evaluation code)."""
    assert pred.shape == gt.shape and pred.shape[-1] == 3, (pred.shape, gt.shape)
    # images smaller than the window (tiny crops): shrink it to the largest odd size that fits
    height, width = pred.shape[:2]
    window = min(window, height - (height + 1) % 2, width - (width + 1) % 2)
    coords = torch.arange(window, dtype=pred.dtype) - (window - 1) / 2
    g = torch.exp(-(coords ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, window, window).to(pred.device)
    x = pred.permute(2, 0, 1)[None]  # [1, 3, H, W]
    y = gt.permute(2, 0, 1)[None]

    def filt(z: Tensor) -> Tensor:
        return F.conv2d(z, kernel, groups=3)

    mu_x, mu_y = filt(x), filt(y)
    sxx = filt(x * x) - mu_x ** 2
    syy = filt(y * y) - mu_y ** 2
    sxy = filt(x * y) - mu_x * mu_y
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2))
    return float(s.mean())


class LPIPSMetric:
    """LPIPS (VGG) from the lpips package. Backbone weights: a torchvision VGG16 state_dict at
    `weights_path`; without it the backbone is random (`pretrained_backbone` False), and reported
    numbers must be labelled as such. The lpips linear heads ship with the package."""

    def __init__(self, weights_path: str = "", device: torch.device | str = "cpu") -> None:
        import lpips

        with torch.random.fork_rng():  # random backbone: the same one in every evaluation
            torch.manual_seed(0)
            self.net = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
        self.pretrained_backbone = False
        if weights_path:
            from .runtime import ConfigError, MissingPathError

            path = Path(weights_path)
            if not path.is_file():
                raise MissingPathError(f"LPIPS backbone weights not found: {path}",
                                       "--eval_lpips_weights: a torchvision vgg16 state_dict")
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                self._load_vgg(state)
            except Exception as err:  # noqa: BLE001 - a foreign file is the user's file
                raise ConfigError(f"not a torchvision VGG16 state_dict: {path}",
                                  type(err).__name__) from None
            self.pretrained_backbone = True
        self.net = self.net.to(device).eval()
        self.device = device

    def _load_vgg(self, state: dict) -> None:
        """Copy torchvision `features.<i>.*` tensors into lpips' slice<k>.<i>.* modules."""
        own = self.net.net.state_dict()
        mapped = {}
        for key in own:
            _, idx, kind = key.split(".")
            src = f"features.{idx}.{kind}"
            if src not in state:
                raise KeyError(f"VGG16 state_dict lacks {src}")
            mapped[key] = state[src]
        self.net.net.load_state_dict(mapped, strict=True)

    @torch.no_grad()
    def __call__(self, pred: Tensor, gt: Tensor) -> float:
        def to(im: Tensor) -> Tensor:
            x = im.permute(2, 0, 1)[None].to(self.device) * 2 - 1  # [1, 3, H, W] in [-1, 1]
            if min(x.shape[-2:]) < 32:  # VGG's 4 poolings need >= 16 px; tiny test images
                x = F.interpolate(x, scale_factor=32 / min(x.shape[-2:]), mode="bilinear")
            return x

        return float(self.net(to(pred), to(gt)).mean())
