"""Evaluation metrics: FID, KID, PCK, multi-view consistency (Sec. 4 of the paper).

FID / KID use Inception-v3 pool features when `inception_path` points to a torchvision
`inception_v3` state dict; offline the default is a clearly labelled stand-in: a fixed,
randomly initialised conv net (seed 0) whose pooled features are compared the same way. Numbers
from the stand-in are only comparable with each other, never with the paper's FID.

Shapes: B batch, D feature dim, J joints.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn


class RandomConvFeatures(nn.Module):
    """Stand-in feature extractor: 4 random conv layers + mean/std pooling -> 256-D."""

    name = "standin-randconv256"

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        chans = [3, 32, 64, 128, 128]
        self.weights = [torch.randn(o, i, 3, 3, generator=gen) / (3 * i ** 0.5)
                        for i, o in itertools.pairwise(chans)]

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(img.float().cpu(), size=64, mode="bilinear", align_corners=False)
        for w in self.weights:
            x = F.leaky_relu(F.conv2d(x, w, stride=2, padding=1), 0.2)
        return torch.cat([x.mean([2, 3]), x.std([2, 3])], 1)


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 pool3 (2048-D) features from a local state dict."""

    name = "inception_v3_pool3"

    def __init__(self, path: str):
        super().__init__()
        from torchvision.models import inception_v3

        self.net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        self.net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.net.fc = nn.Identity()
        self.net.eval()

    @torch.no_grad()
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = F.interpolate((img.float().cpu() + 1) / 2, size=299, mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return self.net((x - mean) / std)


def feature_extractor(inception_path: str = "") -> nn.Module:
    return InceptionFeatures(inception_path) if inception_path else RandomConvFeatures()


def fid(feat_a: torch.Tensor, feat_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets [Na, D], [Nb, D]."""
    a, b = feat_a.double().numpy(), feat_b.double().numpy()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    dist = np.square(mu_a - mu_b).sum() + np.trace(cov_a + cov_b - 2 * np.real(covmean))
    return float(max(dist, 0.0))


def kid(feat_a: torch.Tensor, feat_b: torch.Tensor, num_subsets: int = 50,
        subset_size: int = 100, seed: int = 0) -> float:
    """Kernel Inception Distance: unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3, averaged over
    random subsets (Binkowski et al. 2018; StyleGAN's kernel_inception_distance.py)."""
    a, b = feat_a.double().numpy(), feat_b.double().numpy()
    n = min(len(a), len(b), subset_size)
    dim = a.shape[1]
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = a[rng.choice(len(a), n, replace=False)]
        y = b[rng.choice(len(b), n, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3, (x @ y.T / dim + 1) ** 3)
        total += ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy))
                  / (n * (n - 1)) - 2 * kxy.mean())
    return float(total / num_subsets)


def pck(pred: torch.Tensor, target: torch.Tensor, threshold: float, valid: torch.Tensor | None = None
        ) -> float:
    """Fraction of keypoints within `threshold` pixels. pred, target: [B, J, 2]."""
    ok = (pred - target).norm(dim=-1) <= threshold
    if valid is not None:
        return float(ok[valid].float().mean())
    return float(ok.float().mean())


class KeypointNet(nn.Module):
    """Stand-in 2D keypoint detector (soft-argmax heatmaps) trained on the real images' projected
    SMPL joints; replaces the off-the-shelf detector of the official keypoint metric offline."""

    def __init__(self, num_joints: int = 24, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(), nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.ReLU(),
            nn.Conv2d(width, num_joints, 1))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img [B, 3, H, W] -> keypoints [B, J, 2] in pixels (soft-argmax)."""
        heat = self.net(img)
        b, j, h, w = heat.shape
        prob = heat.flatten(2).softmax(-1).reshape(b, j, h, w)
        xs = torch.arange(w, dtype=img.dtype, device=img.device) + 0.5
        ys = torch.arange(h, dtype=img.dtype, device=img.device) + 0.5
        return torch.stack([(prob.sum(2) * xs).sum(-1), (prob.sum(3) * ys).sum(-1)], -1)


def train_keypoint_net(images: torch.Tensor, joints2d: torch.Tensor, steps: int = 300,
                       seed: int = 0) -> KeypointNet:
    """Fit the stand-in detector on (image [B,3,H,W], joints [B,J,2]) pairs."""
    torch.manual_seed(seed)
    net = KeypointNet(joints2d.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(images), (min(32, len(images)),), generator=gen)
        loss = (net(images[idx]) - joints2d[idx]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def reprojection_consistency(img_a: torch.Tensor, depth_a: torch.Tensor, alpha_a: torch.Tensor,
                             img_b: torch.Tensor, depth_b: torch.Tensor, view_a: torch.Tensor,
                             view_b: torch.Tensor, K: torch.Tensor) -> float:
    """PSNR between view A's foreground pixels and view B sampled at their reprojections,
    where B sees the same surface (depth agreement within 5 cm). Images [3, H, W] in [-1, 1],
    depth_a [1, H, W] alpha-weighted camera z (renderer output), alpha_a [1, H, W], depth_b
    [1, H, W] surface z of view B (its depth / alpha), view [4, 4] world->camera, K [3, 3]."""
    _, h, w = img_a.shape
    ys, xs = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    z = depth_a[0] / alpha_a[0].clamp(min=1e-6)
    fg = alpha_a[0] > 0.9
    cam = torch.stack([(xs - K[0, 2]) / K[0, 0] * z, (ys - K[1, 2]) / K[1, 1] * z, z], -1)[fg]
    world = (cam - view_a[:3, 3]) @ view_a[:3, :3]  # inverse rigid transform
    cam_b = world @ view_b[:3, :3].T + view_b[:3, 3]
    u = cam_b[:, 0] / cam_b[:, 2] * K[0, 0] + K[0, 2]
    v = cam_b[:, 1] / cam_b[:, 2] * K[1, 1] + K[1, 2]
    grid = torch.stack([u / w * 2 - 1, v / h * 2 - 1], -1)[None, None]
    sample = F.grid_sample(torch.cat([img_b, depth_b])[None], grid, align_corners=False)[0, :, 0]
    visible = ((sample[3] - cam_b[:, 2]).abs() < 0.05) & (grid.abs() < 1).all(-1)[0, 0]
    if visible.sum() < 10:
        return float("nan")
    mse = ((sample[:3, visible] - img_a[:, fg][:, visible]) / 2).square().mean()
    return float(-10 * torch.log10(mse.clamp(min=1e-10)))


# ------------------------------------------------ pose-conditioned measures (claim check, CPU)
def part_statistics(images: torch.Tensor, parts: torch.Tensor, num_parts: int = 4,
                    white: float = 0.97) -> dict[str, torch.Tensor]:
    """Per-image agreement of an image with the garment layout of its conditioning body.

    The synthetic mannequins wear one flat colour per body part (shirt with stripes,
    trousers, skin, shoes); `parts` [B, H, W] is that layout rendered for the conditioning
    label (-1 = background). For images [B, 3, H, W] in [-1, 1] returns:
        r2 [B]: share of the colour variance inside the body explained by the part means
            (1 = flat per-part colours as in the data, ~0 = colours unrelated to the parts);
        iou [B]: IoU of the non-white pixels with the body's silhouette;
        feats [B, 4 * num_parts]: per part mean RGB and RMS deviation (missing part: the
            body's mean colour, 0), whose Frechet distance compares garment distributions.
    """
    rgb = ((images.float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)  # [B, H, W, 3]
    body = parts >= 0
    ink = rgb.amin(-1) < white
    iou = (ink & body).flatten(1).sum(1) / (ink | body).flatten(1).sum(1).clamp(min=1)
    r2, feats = [], []
    for img, lay, fg in zip(rgb, parts, body):
        pix, lab = img[fg], lay[fg]  # [P, 3], [P]
        if len(pix) < 2:
            r2.append(torch.tensor(0.0))
            feats.append(torch.zeros(4 * num_parts))
            continue
        total = (pix - pix.mean(0)).square().sum()
        within, row = torch.zeros(()), []
        for k in range(num_parts):
            sel = pix[lab == k]
            mean = sel.mean(0) if len(sel) else pix.mean(0)
            dev = (sel - mean).square().sum() if len(sel) else torch.zeros(())
            within = within + dev
            row.append(torch.cat([mean, (dev / max(len(sel), 1)).sqrt()[None]]))
        r2.append(1 - within / total.clamp(min=1e-8))
        feats.append(torch.cat(row))
    return {"r2": torch.stack(r2), "iou": iou, "feats": torch.stack(feats)}


class GarmentNet(nn.Module):
    """A small CNN trained here on real synthetic renders to predict each image's garment
    statistics (per part mean RGB and deviation, from `part_statistics` of the real image and
    its conditioning layout) from pixels alone; its 64-D penultimate features give a
    data-specific Frechet distance (`garment_fd`), the role Inception plays for FID."""

    name = "garmentnet64"

    def __init__(self, out_dim: int = 16, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(8 * width, 64), nn.LeakyReLU(0.2))
        self.head = nn.Linear(64, out_dim)

    def features(self, img: torch.Tensor) -> torch.Tensor:
        """img [B, 3, H, W] in [-1, 1] -> [B, 64]."""
        return self.body(F.interpolate(img.float(), size=32, mode="area"))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(img))


def train_garment_net(images: torch.Tensor, targets: torch.Tensor, steps: int = 400,
                      seed: int = 0) -> GarmentNet:
    """Fit GarmentNet on (real image [B, 3, H, W], garment statistics [B, 16]) pairs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = GarmentNet(targets.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    with torch.enable_grad():
        for _ in range(steps):
            idx = torch.randint(len(images), (min(64, len(images)),), generator=gen)
            loss = (net(images[idx]) - targets[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net.eval().requires_grad_(False)
