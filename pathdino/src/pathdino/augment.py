"""HistoRotate (Sec. 3.2) and DINO multi-crop augmentation on uint8 image tensors.

Shapes: images are [3, H, W] tensors (uint8 in, float32 ImageNet-normalised out).

HistoRotate: a histology patch has no canonical orientation, so every training view is rotated.
Following the official `DataAugmentationDINO` for 512 px images (the PathDino-512 model):
- global crops: rotation by an exact multiple of 90 degrees, chosen from {90, 180, 270, 360}
  (pixel permutation, no interpolation), then RandomResizedCrop;
- local crops: continuous rotation by an angle uniform in [0, 360) (bilinear, corners filled
  with 0 as torchvision's RandomRotation does), then RandomResizedCrop.
Both are followed by DINO's augmentations: horizontal flip p=0.5 (with the rotations this also
covers vertical flips: vflip = rot180 . hflip), colour jitter (0.4, 0.4, 0.2, 0.1) p=0.8,
grayscale p=0.2, Gaussian blur (p = 1.0 / 0.1 / 0.5 for global 1 / global 2 / local),
solarisation p=0.2 on global 2, ImageNet normalisation.
`historotate=False` gives the same pipeline without the rotations (the ablation).
"""

from __future__ import annotations

import math
import random

import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

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
    """Counter-clockwise rotation by `angle` degrees, bilinear, same size, corners filled with 0."""
    if angle % 90 == 0:
        return rotate_exact(img, int(angle))  # no interpolation where none is needed
    return TF.rotate(img, angle, interpolation=T.InterpolationMode.BILINEAR, fill=0)


def rotate_center_crop(img: torch.Tensor, angle: float, size: int) -> torch.Tensor:
    """Rotate, then keep the central size x size square (no fill if size <= side / sqrt(2))."""
    return TF.center_crop(rotate_continuous(img, angle), [size, size])


def inner_crop_size(side: int) -> int:
    """Largest square that stays inside an image of `side` under any rotation."""
    return math.floor(side / math.sqrt(2.0))


class RandomBlur:
    """Gaussian blur with probability p; DINO's radius 0.1-2 px at 224 px, scaled to the crop."""

    def __init__(self, p: float, crop_size: int) -> None:
        self.p = p
        scale = crop_size / 224.0
        self.sigma = (0.1 * scale, 2.0 * scale)
        self.kernel = 2 * math.ceil(3 * self.sigma[1]) + 1

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return img
        return TF.gaussian_blur(img, [self.kernel, self.kernel],
                                [random.uniform(*self.sigma)] * 2)


class MultiCropAugmentation:
    """Image -> [global_1, global_2, local_1 .. local_n] float tensors (DINO multi-crop)."""

    def __init__(self, global_size: int, local_size: int, num_local: int,
                 global_scale: tuple[float, float] = (0.4, 1.0),
                 local_scale: tuple[float, float] = (0.05, 0.4), historotate: bool = True) -> None:
        self.historotate = historotate
        self.num_local = num_local
        flip_jitter = [
            T.RandomHorizontalFlip(p=0.5),
            T.RandomApply([T.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            T.RandomGrayscale(p=0.2),
        ]
        bicubic = T.InterpolationMode.BICUBIC
        self.global_crop = T.RandomResizedCrop(global_size, scale=tuple(global_scale),
                                               interpolation=bicubic, antialias=True)
        self.local_crop = T.RandomResizedCrop(local_size, scale=tuple(local_scale),
                                              interpolation=bicubic, antialias=True)
        self.flip_jitter = T.Compose(flip_jitter)
        self.blur_g1 = RandomBlur(1.0, global_size)
        self.blur_g2 = RandomBlur(0.1, global_size)
        self.blur_local = RandomBlur(0.5, local_size)
        self.solarize = T.RandomSolarize(threshold=128, p=0.2)
        self.normalize = T.Compose([T.ToDtype(torch.float32, scale=True),
                                    T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

    def _global(self, img: torch.Tensor, second: bool) -> torch.Tensor:
        if self.historotate:
            img = rotate_exact(img, random.choice(EXACT_ANGLES))
        img = self.flip_jitter(self.global_crop(img))
        img = self.blur_g2(img) if second else self.blur_g1(img)
        if second:
            img = self.solarize(img)
        return self.normalize(img)

    def _local(self, img: torch.Tensor) -> torch.Tensor:
        if self.historotate:
            img = rotate_continuous(img, random.uniform(0.0, 360.0))
        img = self.blur_local(self.flip_jitter(self.local_crop(img)))
        return self.normalize(img)

    def __call__(self, img: torch.Tensor) -> list[torch.Tensor]:
        """img: [3, H, W] uint8 -> 2 + num_local crops, each [3, size, size] float32."""
        assert img.ndim == 3 and img.shape[0] == 3 and img.dtype == torch.uint8, (img.shape,
                                                                                 img.dtype)
        crops = [self._global(img, False), self._global(img, True)]
        return crops + [self._local(img) for _ in range(self.num_local)]


def eval_transform(img: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation input: uint8 [.., 3, H, W] -> resize to size x size, normalise (float32)."""
    if img.shape[-1] != size or img.shape[-2] != size:
        img = TF.resize(img, [size, size], interpolation=T.InterpolationMode.BICUBIC,
                        antialias=True)
    img = TF.to_dtype(img, torch.float32, scale=True)
    return TF.normalize(img, IMAGENET_MEAN, IMAGENET_STD)
