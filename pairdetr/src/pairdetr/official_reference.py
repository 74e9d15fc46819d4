"""A re-statement of the official model definition, for tests, the benchmark and weight loading.

The official code (mts-ai/pairdetr, train_lightning_d.py `Detr_light`) takes transformers'
`DeformableDetrForObjectDetection`, replaces its query embedding (num_queries x 2D), replaces the
per-layer heads by ONE shared Linear(D, 3) class head and ONE shared 3-layer MLP(D, D, 8) box
head, and runs its own per-layer loop over the 8 box logits, whose layout is [face (or head),
body] (dataset.py / test.py): (x, y) of the face += logit(reference of that layer), (x, y) of the
body += logit(initial reference), sigmoid. This file rebuilds that
definition (written here, not copied) so that `PairDETR` can be checked against it number for
number, timed against it, and so that official weights (their state_dict layout) can be loaded.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .model import MLP, ModelSpec, PairDETR, build_deformable_detr_config, inverse_sigmoid


class OfficialStylePairDetr(nn.Module):
    """Official `Detr_light` model layout (no Lightning): `model` + shared `class_embed`/`bbox_embed`."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        from transformers import DeformableDetrForObjectDetection

        self.model = DeformableDetrForObjectDetection(build_deformable_detr_config(spec))
        self.model.model.query_position_embeddings = nn.Embedding(spec.num_queries, 2 * spec.dim)
        self.class_embed = nn.Linear(spec.dim, spec.num_classes)
        self.bbox_embed = MLP(spec.dim, spec.dim, 8, 3)
        nn.init.constant_(self.class_embed.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.zeros_(self.bbox_embed.layers[-1].weight)
        nn.init.zeros_(self.bbox_embed.layers[-1].bias)
        with torch.no_grad():
            self.bbox_embed.layers[-1].bias[2:] = -2.0  # face w, h and all body numbers
        self.model.class_embed = nn.ModuleList([self.class_embed] * spec.dec_layers)
        self.model.bbox_embed = nn.ModuleList([self.bbox_embed] * spec.dec_layers)

    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None) -> dict:
        """Returns {"logits" [B, Q, C], "pred_boxes" [B, Q, 8]} of the last decoder layer, boxes in
        the official layout [face, body] (cxcywh in [0, 1])."""
        out = self.model.model(pixel_values, pixel_mask=pixel_mask)
        hidden = out.intermediate_hidden_states
        init_ref = out.init_reference_points
        inter_ref = out.intermediate_reference_points
        init_logit = inverse_sigmoid(init_ref)
        logits, boxes = None, None
        for level in range(hidden.shape[1]):  # the official per-layer loop
            reference = init_ref if level == 0 else inter_ref[:, level - 1]
            reference = inverse_sigmoid(reference)
            logits = self.model.class_embed[level](hidden[:, level])
            delta = self.model.bbox_embed[level](hidden[:, level])
            delta[..., :2] += reference  # face centre
            delta[..., 4:6] += init_logit  # body centre
            boxes = delta.sigmoid()
        return {"logits": logits, "pred_boxes": boxes}


def convert_official_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official/`OfficialStylePairDetr` state_dict -> `PairDETR` state_dict keys."""
    converted = {}
    for key, value in state.items():
        if key.startswith(("model.class_embed.", "model.bbox_embed.")):
            continue  # the same shared heads, listed once per decoder layer
        if key.startswith("model.model."):
            converted["detr." + key[len("model.model."):]] = value
        elif key.startswith("class_embed."):
            converted["class_head." + key[len("class_embed."):]] = value
        elif key.startswith("bbox_embed."):
            converted["box_head." + key[len("bbox_embed."):]] = value
    return converted


def official_from_pairdetr(model: PairDETR) -> OfficialStylePairDetr:
    """An official-layout model holding the same weights as `model` (for equivalence checks)."""
    official = OfficialStylePairDetr(model.spec)
    mine = model.state_dict()
    with torch.no_grad():
        for key, tensor in official.state_dict().items():
            for new_key in convert_official_state_dict({key: tensor}):
                tensor.copy_(mine[new_key])
    return official
