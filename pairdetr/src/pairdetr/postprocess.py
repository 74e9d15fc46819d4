"""Post-processing: queries -> body detections, face detections and body-face pairs.

PairDETR (official test script): class probabilities are a softmax over the C logits, the score of
a query is its largest non-background probability and its label the arg-max. A query labelled
"pair" (0) gives a body, a face and their link (both with the query's score); a query labelled
"body without visible face" (1) gives a body only. No NMS and no hand-made matching.

Which queries are kept: protocol "corrected" keeps those whose person score exceeds
`conf_threshold`; protocol "official" applies test.py's rule, max softmax over ALL C classes
(background included) > 0.1, which with 3 classes (max >= 1/3) keeps every query.

Two-stage baseline: queries labelled body (0) / face (1) are separate detections, then each
face is attached to a body by the POS heuristic of BFJDet (`match_body_face_pos`): bodies and faces
with score > 0.3, distance 1 / IoA(face inside body) where IoA > 0.2 (else infinite), Hungarian.

Per image output (numpy, pixels): "body" [Nb, 5] and "face" [Nf, 5] as (x1, y1, x2, y2, score);
"pairs" [Np, 10] as (body x1 y1 x2 y2, body score, face x1 y1 x2 y2, face score).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .boxes import box_cxcywh_to_xyxy

_NO_MATCH = 1e8
OFFICIAL_CONF_THRESHOLD = 0.1  # test.py / config.py conf_threshold, on the max over all classes


def _keep(prob: torch.Tensor, conf_threshold: float, protocol: str) -> torch.Tensor:
    """[Q, C] softmax -> [Q] bool of the queries post-processing keeps."""
    if protocol == "official":
        return prob.max(-1).values > OFFICIAL_CONF_THRESHOLD
    return prob[:, :-1].max(-1).values > conf_threshold


def _to_pixels(boxes: torch.Tensor, width: float, height: float) -> np.ndarray:
    """[N, 4] cxcywh in [0, 1] -> [N, 4] xyxy pixels (numpy)."""
    scale = boxes.new_tensor([width, height, width, height])
    return (box_cxcywh_to_xyxy(boxes) * scale).detach().cpu().double().numpy()


@torch.no_grad()
def postprocess_pairs(logits: torch.Tensor, boxes: torch.Tensor, width: float, height: float,
                      conf_threshold: float = 0.01,
                      protocol: str = "corrected") -> dict[str, np.ndarray]:
    """PairDETR outputs of one image -> detections.

    Args:
        logits: [Q, C] class logits (last = no object). boxes: [Q, 8] body/face cxcywh in [0, 1].
        width, height: size of the image the boxes refer to (pixels).
        protocol: which queries are kept (module docstring).
    """
    assert boxes.shape[-1] == 8, boxes.shape
    prob_all = logits.float().softmax(-1)  # [Q, C]
    scores, labels = prob_all[:, :-1].max(-1)  # [Q]
    keep = _keep(prob_all, conf_threshold, protocol)
    order = torch.argsort(scores[keep], descending=True)
    scores, labels, boxes = scores[keep][order], labels[keep][order], boxes[keep][order]
    body = _to_pixels(boxes[:, :4], width, height)
    face = _to_pixels(boxes[:, 4:], width, height)
    s = scores.cpu().double().numpy()[:, None]
    is_pair = (labels == 0).cpu().numpy()
    return {
        "body": np.concatenate([body, s], 1),
        "face": np.concatenate([face[is_pair], s[is_pair]], 1),
        "pairs": np.concatenate([body[is_pair], s[is_pair], face[is_pair], s[is_pair]], 1),
    }


def _one_side_ioa(faces: np.ndarray, bodies: np.ndarray) -> np.ndarray:
    """[F, 4] and [B, 4] xyxy -> [B, F] intersection / face area."""
    iw = np.minimum(bodies[:, None, 2], faces[None, :, 2]) - np.maximum(bodies[:, None, 0],
                                                                       faces[None, :, 0])
    ih = np.minimum(bodies[:, None, 3], faces[None, :, 3]) - np.maximum(bodies[:, None, 1],
                                                                       faces[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1])
    return inter / np.maximum(area[None, :], 1e-12)


def match_body_face_pos(body: np.ndarray, face: np.ndarray, score_threshold: float = 0.3,
                        min_ioa: float = 0.2) -> np.ndarray:
    """POS association of BFJDet (position only): [Nb, 5], [Nf, 5] -> pairs [Np, 10]."""
    body = body[body[:, 4] > score_threshold]
    face = face[face[:, 4] > score_threshold]
    if len(body) == 0 or len(face) == 0:
        return np.zeros((0, 10))
    ioa = _one_side_ioa(face[:, :4], body[:, :4])  # [B, F]
    cost = np.where(ioa > min_ioa, 1.0 / np.maximum(ioa, 1e-12), _NO_MATCH)
    rows, cols = linear_sum_assignment(cost)
    ok = cost[rows, cols] < _NO_MATCH
    return np.concatenate([body[rows[ok]], face[cols[ok]]], 1)


@torch.no_grad()
def postprocess_two_stage(logits: torch.Tensor, boxes: torch.Tensor, width: float, height: float,
                          conf_threshold: float = 0.01,
                          protocol: str = "corrected") -> dict[str, np.ndarray]:
    """Baseline outputs of one image ([Q, 3] logits body/face/none, [Q, 4] boxes) -> detections
    (the same keep rule per protocol as `postprocess_pairs`)."""
    assert boxes.shape[-1] == 4, boxes.shape
    prob_all = logits.float().softmax(-1)
    scores, labels = prob_all[:, :-1].max(-1)
    keep = _keep(prob_all, conf_threshold, protocol)
    order = torch.argsort(scores[keep], descending=True)
    scores, labels, boxes = scores[keep][order], labels[keep][order], boxes[keep][order]
    dets = np.concatenate([_to_pixels(boxes, width, height),
                           scores.cpu().double().numpy()[:, None]], 1)
    lab = labels.cpu().numpy()
    body, face = dets[lab == 0], dets[lab == 1]
    return {"body": body, "face": face, "pairs": match_body_face_pos(body, face)}
