"""PairDETR model: transformers' Deformable-DETR with pair heads (Sec. 3, official code).

Backbone (timm ResNet-50 in the paper config, a small random HF ResNet for tiny runs) ->
multi-scale deformable encoder/decoder (transformers' `DeformableDetrModel`, pure-PyTorch
deformable attention on CPU) -> per decoder layer, shared heads:
  class head  Linear(D -> C), bias = -log((1 - 0.01) / 0.01) (prior 0.01);
  box head    MLP D-D-D-(4K), last layer zero weights, bias 0 for the first (x, y) and -2 for all
              later entries (official init `bias[2:] = -2`).
The box head keeps the OFFICIAL layout of a pair query (K = 2), which is [face (or head), body]:
the official dataset.py puts the second box of an annotation row (face/head) first and test.py
reads `f_bbox = box[:4]`, `bbox = box[4:]`. So, exactly as in the official model, the face (x, y)
logits are offsets from the decoder layer's reference point, the body (x, y) logits are offsets
from the initial reference point (the same point while iterative box refinement is off, as in the
official config), and `bias[2:] = -2` sets the face w/h and all four body numbers to -2.
`forward` then returns the pair as [body, face] (this code's convention everywhere else), so
official weights give official detections.

Query embeddings: a fresh `nn.Embedding(Q, 2D)`, N(0, 1), as the official model (transformers'
own init would give std 0.02 and put every initial reference point near the image centre).

Shapes: B batch, 3 RGB, H W image, Q queries, L decoder layers, D model width, C classes.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters (rebuilt from a checkpoint's config)."""

    num_classes: int = 3  # pair | body-only | no-object (two-stage: body | face | no-object)
    box_dim: int = 8  # 8 = (body, face) pair; 4 = single box (two-stage baseline)
    backbone: str = "tiny"  # "tiny" (HF ResNet, random) or a timm model name, e.g. resnet50
    backbone_width: int = 16
    dim: int = 256
    ffn_dim: int = 1024
    heads: int = 8
    enc_layers: int = 6
    dec_layers: int = 6
    num_queries: int = 1500
    num_levels: int = 4
    points: int = 4
    dropout: float = 0.1


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """logit(x) with clamping, as Deformable-DETR."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def build_deformable_detr_config(spec: ModelSpec):
    """A transformers `DeformableDetrConfig` for `spec` (random weights, nothing downloaded)."""
    from transformers import DeformableDetrConfig, ResNetConfig

    common = {
        "d_model": spec.dim, "encoder_layers": spec.enc_layers, "decoder_layers": spec.dec_layers,
        "encoder_ffn_dim": spec.ffn_dim, "decoder_ffn_dim": spec.ffn_dim,
        "encoder_attention_heads": spec.heads, "decoder_attention_heads": spec.heads,
        "num_queries": spec.num_queries, "num_feature_levels": spec.num_levels,
        "encoder_n_points": spec.points, "decoder_n_points": spec.points, "dropout": spec.dropout,
        "two_stage": False, "with_box_refine": False, "num_labels": spec.num_classes,
    }
    if spec.backbone == "tiny":
        width = spec.backbone_width
        backbone = ResNetConfig(
            num_channels=3, embedding_size=width, hidden_sizes=[width, 2 * width, 4 * width,
                                                                8 * width],
            depths=[1, 1, 1, 1], layer_type="basic",
            out_features=["stage2", "stage3", "stage4"][-min(spec.num_levels, 3):],
        )
        return DeformableDetrConfig(backbone_config=backbone, use_timm_backbone=False, **common)
    return DeformableDetrConfig(backbone=spec.backbone, use_timm_backbone=True, **common)


def official_to_ours(boxes: torch.Tensor) -> torch.Tensor:
    """[..., 8] official pair layout [face, body] -> [body, face] (a no-op for 4 numbers).

    The swap is its own inverse, so the same function maps [body, face] back to [face, body].
    """
    if boxes.shape[-1] != 8:
        return boxes
    return torch.cat([boxes[..., 4:], boxes[..., :4]], dim=-1)  # [..., 8]


class MLP(nn.Module):
    """Feed-forward head: `num_layers` linear layers with ReLU in between."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class PairDETR(nn.Module):
    """Deformable-DETR whose queries each predict a (body, face) pair and a pair class."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        from transformers import DeformableDetrModel

        assert spec.box_dim in (4, 8), spec.box_dim
        self.spec = spec
        self.detr = DeformableDetrModel(build_deformable_detr_config(spec))
        # transformers freezes the stem and first stage of HF ResNets (meant for pretrained
        # weights); here everything trains unless `model_freeze_backbone` (engine) says otherwise
        for p in self.detr.backbone.parameters():
            p.requires_grad_(True)
        # official: a new nn.Embedding replaces the query embeddings -> N(0, 1) init
        self.detr.query_position_embeddings = nn.Embedding(spec.num_queries, 2 * spec.dim)
        self.class_head = nn.Linear(spec.dim, spec.num_classes)
        self.box_head = MLP(spec.dim, spec.dim, spec.box_dim, 3)
        nn.init.constant_(self.class_head.bias, -math.log((1 - 0.01) / 0.01))  # prior 0.01
        last = self.box_head.layers[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        with torch.no_grad():  # official: bias[2:] = -2 (face w, h and all body numbers)
            last.bias[2:] = -2.0

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.detr.backbone.parameters())

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None,
                aux: bool = True) -> dict:
        """Predict pairs.

        Args:
            pixel_values: [B, 3, H, W] ImageNet-normalised images (padded).
            pixel_mask: [B, H, W] 1 on real pixels, 0 on padding (None = all real).
            aux: also return the outputs of the intermediate decoder layers.
        Returns:
            dict with "pred_logits" [B, Q, C], "pred_boxes" [B, Q, box_dim] (cxcywh in [0, 1],
            body then face), and when `aux` "aux_outputs": L-1 dicts with the same two keys.
            (`official_to_ours` maps "pred_boxes" back to the head's own [face, body] layout.)
        """
        assert pixel_values.ndim == 4 and pixel_values.shape[1] == 3, pixel_values.shape
        out = self.detr(pixel_values=pixel_values, pixel_mask=pixel_mask)
        hidden = out.intermediate_hidden_states  # [B, L, Q, D]
        init_ref = inverse_sigmoid(out.init_reference_points)  # [B, Q, 2]
        inter_ref = out.intermediate_reference_points  # [B, L, Q, 2]
        assert init_ref.shape[-1] == 2, "two-stage / box refinement are not supported"
        # reference point of layer l = the one layer l consumed: init for l = 0, else l-1 output
        refs = torch.cat([out.init_reference_points[:, None], inter_ref[:, :-1]], dim=1)
        refs = inverse_sigmoid(refs)  # [B, L, Q, 2]
        logits = self.class_head(hidden)  # [B, L, Q, C]
        delta = self.box_head(hidden)  # [B, L, Q, 4K], official layout [face, body]
        offset = torch.zeros_like(delta)
        offset[..., 0:2] = refs  # face (or single box) centre from the layer's reference
        if self.spec.box_dim == 8:
            offset[..., 4:6] = init_ref[:, None]  # body centre from the initial reference
        boxes = official_to_ours((delta + offset).sigmoid())  # [B, L, Q, 4K] [body, face]
        result = {"pred_logits": logits[:, -1], "pred_boxes": boxes[:, -1]}
        if aux:
            result["aux_outputs"] = [{"pred_logits": logits[:, i], "pred_boxes": boxes[:, i]}
                                     for i in range(logits.shape[1] - 1)]
        return result


def load_backbone_weights(model: PairDETR, path: str) -> dict[str, list[str]]:
    """Load a torchvision/timm ResNet state_dict (.pth) into the timm backbone.

    Returns the missing and unexpected keys (the classifier `fc.*` is expected to be unused).
    """
    from .runtime import CheckpointError, ConfigError, read_weights_file

    if model.spec.backbone == "tiny":
        raise ConfigError("model_backbone_weights needs a timm backbone (e.g. resnet50), not tiny",
                          "set model_backbone")
    state = read_weights_file(path, "model_backbone_weights")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    target = model.detr.backbone.model
    state = {k: v for k, v in state.items() if not str(k).startswith("fc.")}
    try:
        result = target.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError) as err:
        raise CheckpointError(f"{path}: backbone weights do not fit {model.spec.backbone} "
                              f"({str(err).strip().splitlines()[0][:160]})") from err
    loaded = len(state) - len(result.unexpected_keys)
    if loaded == 0:
        raise CheckpointError(f"no backbone weight of {path} matched the {model.spec.backbone} "
                              "keys", "is it a torchvision/timm ResNet state_dict?")
    return {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys)}
