"""Students and the text-embedding classifier (Predict step) of VL2V-ADiP.

Shapes: `B` batch, `S` image side, `F` backbone feature size, `D` teacher embedding size,
`C` classes. Images enter every model as [B, 3, S, S] in [0, 1]; each backbone normalises itself.

- `SmallCNN`: a small conv net used as the synthetic-data student (and stand-in teacher tower).
- `TimmBackbone`: any timm model (resnet50, vit_small_patch16_224, deit_small_patch16_224, ...),
  ImageNet weights from a local file when given.
- `TextClassifier`: logits = s * cos(feature, class text embedding) (official ClassificationHead
  with normalize=True and zero-shot weights scaled by CLIP's logit scale).
- `Student`: backbone + projection F -> D (VL2V-ADiP, Sec. 4) or + linear head F -> C (ERM/KD).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .runtime import CheckpointError, ConfigError, MissingPathError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalize(nn.Module):
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class SmallCNN(nn.Module):
    """Four conv stages (3x3 conv, BN, ReLU, 2x2 max-pool) + global average pool -> [B, F]."""

    def __init__(self, width: int = 32, out_dim: int | None = None,
                 mean: tuple[float, ...] = IMAGENET_MEAN,
                 std: tuple[float, ...] = IMAGENET_STD) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = [Normalize(mean, std)]
        for c_in, c_out in itertools.pairwise(chans):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
        self.body = nn.Sequential(*layers)
        self.num_features = chans[-1]
        self.out = nn.Linear(chans[-1], out_dim) if out_dim else nn.Identity()
        if out_dim:
            self.num_features = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, 3, S, S] in [0, 1] -> features [B, F]."""
        h = self.body(x)  # [B, 4w, S/16, S/16]
        return self.out(h.mean(dim=(2, 3)))  # [B, F]


class TimmBackbone(nn.Module):
    """timm feature extractor (num_classes=0); `weights` is a local state-dict file (.pth/.pt/
    .safetensors) loaded through timm's pretrained_cfg overlay (classifier keys dropped)."""

    def __init__(self, name: str, image_size: int, weights: str = "") -> None:
        super().__init__()
        import timm

        kwargs = {"num_classes": 0}
        if "vit" in name or "deit" in name:
            kwargs["img_size"] = image_size
        if weights:
            if not Path(weights).is_file():
                raise MissingPathError(f"student weights not found: {weights}",
                                       "an ImageNet state-dict file for --student_weights")
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(weights)})
        try:
            self.net = timm.create_model(name, **kwargs)
        except Exception as err:
            if "Unknown model" in str(err):
                raise ConfigError(f"student_arch={name!r} is not a timm model",
                                  "e.g. resnet50, vit_small_patch16_224") from None
            if not weights:
                raise
            raise CheckpointError(f"student weights {weights} could not be read or do not fit "
                                  f"{name} ({type(err).__name__})",
                                  "an ImageNet .pth/.safetensors state dict of student_arch") \
                from None
        self.norm = Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.image_size = image_size
        self.num_features = int(self.net.num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False)
        return self.net(self.norm(x))  # [B, F]


class TextClassifier(nn.Module):
    """Predict step: logits[b, c] = scale * cos(x_b, t_c), t = class text embeddings [C, D]."""

    def __init__(self, class_embeddings: torch.Tensor, logit_scale: float = 100.0) -> None:
        super().__init__()
        assert class_embeddings.ndim == 2, class_embeddings.shape
        self.register_buffer("class_embeddings", F.normalize(class_embeddings.float(), dim=-1))
        self.register_buffer("logit_scale", torch.tensor(float(logit_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, D] (any norm) -> logits [B, C]."""
        assert x.shape[-1] == self.class_embeddings.shape[-1], (x.shape,
                                                                self.class_embeddings.shape)
        return self.logit_scale * F.normalize(x, dim=-1) @ self.class_embeddings.t()


class Student(nn.Module):
    """A student network.

    head="text": backbone -> proj (Linear F -> D) -> TextClassifier (VL2V-ADiP; proj=Identity for
    the white-box student, whose backbone is the teacher's image tower already in the space).
    head="linear": backbone -> Linear F -> C (ERM and naive-KD baselines).
    """

    def __init__(self, backbone: nn.Module, head: str, num_classes: int,
                 class_embeddings: torch.Tensor | None = None, logit_scale: float = 100.0,
                 use_projection: bool = True) -> None:
        super().__init__()
        self.backbone = backbone
        self.head_kind = head
        feat = backbone.num_features
        if head == "text":
            assert class_embeddings is not None, "text head needs class embeddings"
            embed_dim = class_embeddings.shape[1]
            if not use_projection and feat != embed_dim:
                raise CheckpointError(f"backbone features {feat} != embedding size {embed_dim}")
            self.proj = nn.Linear(feat, embed_dim) if use_projection else nn.Identity()
            self.classifier = TextClassifier(class_embeddings, logit_scale)
        elif head == "linear":
            self.proj = nn.Identity()
            self.classifier = nn.Linear(feat, num_classes)
        else:
            raise ValueError(f"head must be 'text' or 'linear', got {head!r}")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> projected features [B, D] (text head) or backbone features [B, F]."""
        return self.proj(self.backbone(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] -> logits [B, C]."""
        return self.classifier(self.embed(x))
