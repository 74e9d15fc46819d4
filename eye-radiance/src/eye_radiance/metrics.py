"""Image metrics for the recovered scene: PSNR, SSIM (Gaussian window, Wang et al. 2004), LPIPS."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1], any shape."""
    mse = F.mse_loss(pred.float(), target.float()).item()
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()


def ssim(pred: torch.Tensor, target: torch.Tensor, window: int = 7, sigma: float = 1.5) -> float:
    """Mean SSIM of [H, W, 3] images in [0, 1] with a Gaussian window (C1, C2 of Wang et al.)."""
    x = pred.float().permute(2, 0, 1)[None]  # [1, 3, H, W]
    y = target.float().permute(2, 0, 1)[None]
    coords = torch.arange(window, dtype=torch.float32) - (window - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    kernel = (g[:, None] * g[None, :]).expand(3, 1, window, window)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, kernel, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return s.mean().item()


class LpipsMetric:
    """LPIPS (AlexNet) from the lpips package. Its linear heads ship with the package; the AlexNet
    backbone loads from `backbone_path` (torchvision state dict) or stays random (labelled)."""

    def __init__(self, backbone_path: str = "") -> None:
        import lpips

        self.model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
        self.label = "lpips" if backbone_path else "lpips_random_backbone"
        if backbone_path:
            import torchvision

            alexnet = torchvision.models.alexnet()
            alexnet.load_state_dict(
                torch.load(backbone_path, map_location="cpu", weights_only=True)
            )
            for block in (
                self.model.net.slice1,
                self.model.net.slice2,
                self.model.net.slice3,
                self.model.net.slice4,
                self.model.net.slice5,
            ):
                for name, module in block.named_children():
                    module.load_state_dict(alexnet.features[int(name)].state_dict())

    @torch.no_grad()
    def __call__(self, pred: torch.Tensor, target: torch.Tensor) -> float:
        """[H, W, 3] images in [0, 1]."""
        to = lambda t: t.float().permute(2, 0, 1)[None] * 2 - 1  # noqa: E731
        return float(self.model(to(pred), to(target)).item())
