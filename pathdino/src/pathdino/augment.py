"""HistoRotate (Sec. 3.2) and DINO multi-crop augmentation, as the official `DataAugmentationDINO`.

Shapes: a source image is a uint8 tensor [3, H, W] or a PIL RGB image; crops come out as float32
[3, s, s], ImageNet-normalised. Evaluation helpers (`rotate_*`, `eval_transform`) work on tensors.

The training pipeline runs on PIL images with torchvision's v1 transforms and PIL filters, the
same calls the official `PathDino_main_512.py` makes, so that every random draw (torch for the
crops, flips, jitter and continuous rotation; python `random` for the exact rotation, blur and
solarisation) is consumed in the official order. Two paths, chosen by the image width as there:
- 512 px path (any width other than `large_side`): global crops rotated by an exact angle chosen
  from {90, 180, 270, 360} (PIL transposes, no interpolation); local crops rotated by an angle
  uniform in [0, 360) with nearest-neighbour sampling (torchvision's RandomRotation default;
  corners filled with 0); then RandomResizedCrop to 512 / 224 (bicubic).
- 1024 px path (width == `large_side`): every crop is first rotated continuously (nearest), then
  RandomResizedCrop'ed to 600 px with scale (0.4, 7.0) (areas > 1 never fit, so torchvision's
  retry loop and whole-image fallback apply), then cropped to 512 / 224 as above.
Both continue with DINO's augmentations: horizontal flip p=0.5, colour jitter (0.4, 0.4, 0.2, 0.1)
p=0.8, grayscale p=0.2, PIL Gaussian blur with radius U(0.1, 2.0) at every crop size (p = 1.0 /
0.1 / 0.5 for global 1 / global 2 / local), solarisation p=0.2 on global 2, ImageNet
normalisation. `historotate=False` gives the same pipeline without the rotations (ablation).
"""

from __future__ import annotations

import math
import random

import numpy as np
import torch
import torchvision.transforms as T1
import torchvision.transforms.functional as F1
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageFilter, ImageOps

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EXACT_ANGLES = (90, 180, 270, 360)  # official ExactRotation list


def rotate_exact(img: torch.Tensor, angle: int) -> torch.Tensor:
    """Counter-clockwise rotation by a multiple of 90 degrees, as a pixel permutation.

    Args:
        img: [..., H, W].
    Returns:
        [..., W, H] (same shape for square images), bit-identical pixel values.
    """
    if angle % 90 != 0:
        raise ValueError(f"exact rotation needs a multiple of 90 degrees, got {angle}")
    return torch.rot90(img, k=(angle // 90) % 4, dims=(-2, -1))


def rotate_continuous(img: torch.Tensor, angle: float) -> torch.Tensor:
    """Counter-clockwise rotation by `angle` degrees, bilinear, same size, corners filled with 0.

    Used by the evaluation (rotated queries), not by the training views (see `MultiCropAugmentation`).
    """
    if angle % 90 == 0:
        return rotate_exact(img, int(angle))  # no interpolation where none is needed
    return TF.rotate(img, angle, interpolation=T.InterpolationMode.BILINEAR, fill=0)


def rotate_center_crop(img: torch.Tensor, angle: float, size: int) -> torch.Tensor:
    """Rotate, then keep the central size x size square (no fill if size <= side / sqrt(2))."""
    return TF.center_crop(rotate_continuous(img, angle), [size, size])


def inner_crop_size(side: int) -> int:
    """Largest square that stays inside an image of `side` under any rotation."""
    return math.floor(side / math.sqrt(2.0))


def to_pil(img: torch.Tensor | Image.Image) -> Image.Image:
    """uint8 [3, H, W] tensor (or a PIL image) -> PIL RGB image."""
    if isinstance(img, Image.Image):
        return img.convert("RGB")
    assert img.ndim == 3 and img.shape[0] == 3 and img.dtype == torch.uint8, (img.shape, img.dtype)
    return Image.fromarray(np.ascontiguousarray(img.permute(1, 2, 0).numpy()))  # [H, W, 3]


class GaussianBlur:
    """DINO's PIL blur: with probability p (drawn as `random() <= p`), radius U(0.1, 2.0) px,
    the same at every crop size."""

    def __init__(self, p: float, radius_min: float = 0.1, radius_max: float = 2.0) -> None:
        self.p, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img: Image.Image) -> Image.Image:
        if not random.random() <= self.p:
            return img
        radius = random.uniform(self.radius_min, self.radius_max)
        return img.filter(ImageFilter.GaussianBlur(radius=radius))


class Solarization:
    """PIL solarisation (invert pixels >= 128) with probability p (`random() < p`)."""

    def __init__(self, p: float) -> None:
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return ImageOps.solarize(img) if random.random() < self.p else img


class ExactRotation:
    """HistoRotate for global crops of 512 px images: an angle from `angles` (python random),
    torchvision's rotate on PIL (a transpose for square images, no interpolation)."""

    def __init__(self, angles: tuple[int, ...] = EXACT_ANGLES) -> None:
        self.angles = angles

    def __call__(self, img: Image.Image) -> Image.Image:
        return F1.rotate(img, random.choice(self.angles))


class MultiCropAugmentation:
    """Image -> [global_1, global_2, local_1 .. local_n] float tensors (DINO multi-crop)."""

    def __init__(self, global_size: int, local_size: int, num_local: int,
                 global_scale: tuple[float, float] = (0.4, 1.0),
                 local_scale: tuple[float, float] = (0.05, 0.4), historotate: bool = True,
                 large_side: int = 1024, large_crop: int = 600,
                 large_crop_scale: tuple[float, float] = (0.4, 7.0)) -> None:
        """large_side: images of this width take the official 1024 px path (0 = never)."""
        self.historotate, self.num_local, self.large_side = historotate, num_local, large_side
        bicubic = T1.InterpolationMode.BICUBIC
        self.rotate_any = T1.RandomRotation(degrees=(0, 360))  # nearest, fill 0 (defaults)
        self.rotate_exact = ExactRotation(EXACT_ANGLES)
        self.large_crop = T1.RandomResizedCrop(large_crop, scale=tuple(large_crop_scale),
                                               interpolation=bicubic)
        self.global_crop = T1.RandomResizedCrop(global_size, scale=tuple(global_scale),
                                                interpolation=bicubic)
        self.local_crop = T1.RandomResizedCrop(local_size, scale=tuple(local_scale),
                                               interpolation=bicubic)
        self.flip_jitter = T1.Compose([
            T1.RandomHorizontalFlip(p=0.5),
            T1.RandomApply([T1.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T1.RandomGrayscale(p=0.2)])
        self.blur_g1, self.blur_g2, self.blur_local = GaussianBlur(1.0), GaussianBlur(0.1), \
            GaussianBlur(0.5)
        self.solarize = Solarization(0.2)
        self.normalize = T1.Compose([T1.ToTensor(), T1.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def _prepare(self, img: Image.Image, large: bool, global_view: bool) -> Image.Image:
        """HistoRotate, plus the 600 px crop of the 1024 px path."""
        if large:
            if self.historotate:
                img = self.rotate_any(img)
            return self.large_crop(img)
        if self.historotate:
            img = self.rotate_exact(img) if global_view else self.rotate_any(img)
        return img

    def _global(self, img: Image.Image, large: bool, second: bool) -> torch.Tensor:
        img = self.flip_jitter(self.global_crop(self._prepare(img, large, True)))
        img = self.blur_g2(img) if second else self.blur_g1(img)
        if second:
            img = self.solarize(img)
        return self.normalize(img)

    def _local(self, img: Image.Image, large: bool) -> torch.Tensor:
        img = self.flip_jitter(self.local_crop(self._prepare(img, large, False)))
        return self.normalize(self.blur_local(img))

    def __call__(self, img: torch.Tensor | Image.Image) -> list[torch.Tensor]:
        """img: uint8 [3, H, W] (or PIL) -> 2 + num_local crops, each [3, size, size] float32."""
        img = to_pil(img)
        large = self.large_side > 0 and img.size[0] == self.large_side  # official: width == 1024
        crops = [self._global(img, large, False), self._global(img, large, True)]
        return crops + [self._local(img, large) for _ in range(self.num_local)]


def eval_transform(img: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation input: uint8 [.., 3, H, W] -> resize to size x size, normalise (float32)."""
    if img.shape[-1] != size or img.shape[-2] != size:
        img = TF.resize(img, [size, size], interpolation=T.InterpolationMode.BICUBIC,
                        antialias=True)
    img = TF.to_dtype(img, torch.float32, scale=True)
    return TF.normalize(img, IMAGENET_MEAN, IMAGENET_STD)
