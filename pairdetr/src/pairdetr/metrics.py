"""Evaluation metrics of the paper: body/face AP and MR^-2, and the association metric mMR^-2.

Two protocols (config `eval_protocol`, README "Official evaluation quirks"):
  official  - the released toolkits number for number: BFJDet's APMRToolkits (CrowdHuman AP/MR,
              COCO-style ground truth) and PairDETR's copy of BFJDet's `eval_mmr.py`, quirks kept;
  corrected - the same definitions with those quirks fixed.

Body / face AP and MR^-2 (APMRToolkits): detections of all images sorted by score, Caltech
matching at IoU > 0.5 (non-ignored ground truth first, ignore regions matched by intersection
over detection area and then dropped), AP = trapezoidal area under the (recall, precision) points,
MR^-2 = geometric mean of the miss rate at the first point whose FPPI >= each of 9 references
log-spaced in [1e-2, 1]. Official only: boxes are clipped to the image, overlaps carry the
toolkit's 1e-6 in the denominator, only images with at least one non-ignored person count
(its COCO reader drops the others), and the face ground truth of an ignored person is its BODY box.

mMR^-2 (BFJDet `COCOMReval`, "miss matching rate"): only detections carrying a face
(f_score > 0) count, ranked by body score + face score. A detection is a true positive only when
its body AND its face overlap the SAME ground-truth person at IoU >= 0.5 (body IoU is IoA for
ignored persons); each person matches at most once. Ground truths outside a subset's body height
/ visibility / face height ranges become ignore regions; detections outside the height ranges
(body: x/÷ 1.25) are dropped. The log-average of 1 - recall at FPPI in {1e-2 ... 1} is mMR^-2.
Official only: (1) no detection at FPPI <= a reference reads the FINAL recall (index -1);
(2) the overlap rows are computed for detections re-sorted by body score only while matching walks
them in body + face order (misaligned when the two scores differ); (3) `eval_mmr()` loops over the
first 4 of PairDETR's 5 setups [All, Reasonable, Bare, Partial, Heavy] and stores them under the
keys Reasonable, Bare, Partial, Heavy (so "Reasonable" holds All, ..., and Heavy is never run).

Evaluation runs in two stages so that it can be sharded over ranks: `image_summary` (per image,
what the toolkits compute before pooling) and `pool_summaries` (sorting and cumulative counts).
Pixel heights scale with `height_scale` (1 for the real datasets). Inputs per image: predictions
{"body" [Nb,5], "face" [Nf,5], "pairs" [Np,10]} (postprocess.py) and a `PairRecord`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from .boxes import numpy_iou

Protocol = Literal["official", "corrected"]
PROTOCOLS: tuple[str, ...] = ("official", "corrected")
FPPI_REFS = np.array([0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.0000])
# (body height range, visibility range, face height range), BFJDet eval_cp + PairDETR's "All"
MMR_SETUPS = {
    "Reasonable": ((50, 1e10), (0.65, 1e10), (20, 1e10)),
    "Bare": ((50, 1e10), (0.9, 1e10), (20, 1e10)),
    "Partial": ((50, 1e10), (0.65, 0.9), (20, 1e10)),
    "Heavy": ((50, 1e10), (0.0, 0.65), (20, 1e10)),
    "All": ((20, 1e10), (0.2, 1e10), (20, 1e10)),
}
# PairDETR's eval_mmr.py Params order, and the keys its eval_mmr() stores setups 0-3 under
OFFICIAL_SETUP_ORDER = ("All", "Reasonable", "Bare", "Partial", "Heavy")
OFFICIAL_KEYS = ("Reasonable", "Bare", "Partial", "Heavy")
EXP_FILTER = 1.25
TOOLKIT_EPS = 1e-6  # APMRToolkits box_overlap_opr


# ------------------------------------------------------------------ AP / MR (CrowdHuman toolkit)


def _overlaps(dt: np.ndarray, gt: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """([D, G] IoU, [D, G] intersection over detection area) as the toolkit computes them."""
    if eps == 0.0:
        return numpy_iou(dt, gt), numpy_iou(dt, gt, crowd=np.ones(len(gt), bool))
    iw = np.minimum(dt[:, None, 2], gt[None, :, 2]) - np.maximum(dt[:, None, 0], gt[None, :, 0])
    ih = np.minimum(dt[:, None, 3], gt[None, :, 3]) - np.maximum(dt[:, None, 1], gt[None, :, 1])
    inter = np.maximum(0, iw) * np.maximum(0, ih)  # [D, G]
    dt_area = ((dt[:, 2] - dt[:, 0]) * (dt[:, 3] - dt[:, 1]))[:, None]
    gt_area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :]
    return inter / (dt_area + gt_area - inter + eps), inter / (dt_area + eps)


def caltech_match(dt: np.ndarray, gt: np.ndarray, gt_ignore: np.ndarray, thr: float = 0.5,
                  eps: float = 0.0) -> list[tuple[float, int]]:
    """Match one image's detections. dt [D, 5] xyxy+score, gt [G, 4] xyxy, gt_ignore [G] bool.

    Returns (score, 1 = true positive / 0 = false positive) for every non-ignored detection.
    `eps` = the toolkit's denominator epsilon (official protocol), 0 = plain IoU.
    """
    dt = np.asarray(dt, float).reshape(-1, 5)
    if len(dt) == 0:
        return []
    dt = dt[np.argsort(-dt[:, 4], kind="mergesort")]
    gt = np.asarray(gt, float).reshape(-1, 4)
    if len(gt) == 0:
        return [(float(s), 0) for s in dt[:, 4]]
    order = np.argsort(np.asarray(gt_ignore, bool), kind="mergesort")  # regular first
    gt, ign = gt[order], np.asarray(gt_ignore, bool)[order]
    iou, ioa = _overlaps(dt[:, :4], gt, eps)
    matched = np.zeros(len(gt), bool)
    result = []
    for i in range(len(dt)):
        best, best_j = thr, -1
        for j in range(len(gt)):
            if matched[j]:
                continue
            if not ign[j]:
                if iou[i, j] > best:
                    best, best_j = iou[i, j], j
            else:
                if best_j >= 0:
                    break
                if ioa[i, j] > thr:
                    best, best_j = ioa[i, j], j
        if best_j >= 0 and not ign[best_j]:
            matched[best_j] = True
            result.append((float(dt[i, 4]), 1))
        elif best_j < 0:
            result.append((float(dt[i, 4]), 0))
    return result


def ap_and_mr(matches: list[tuple[float, int]], num_gt: int, num_images: int) -> tuple[float, float]:
    """(AP, MR^-2) from pooled matches of all images (CrowdHuman toolkit definitions)."""
    if num_gt <= 0 or not matches:
        return (float("nan") if num_gt <= 0 else 0.0), (float("nan") if num_gt <= 0 else 1.0)
    scores = np.array([m[0] for m in matches])
    tp_flags = np.array([m[1] for m in matches])[np.argsort(-scores, kind="mergesort")]
    tp = np.cumsum(tp_flags)
    fp = np.cumsum(1 - tp_flags)
    recall = tp / num_gt
    precision = tp / np.maximum(tp + fp, 1e-12)
    ap = float(np.sum((recall[1:] - recall[:-1]) * (precision[1:] + precision[:-1]) / 2))
    fppi = fp / max(num_images, 1)
    miss = []
    for ref in FPPI_REFS:
        idx = np.nonzero(fppi >= ref)[0]
        miss.append(1 - recall[idx[0] if len(idx) else len(fppi) - 1])
    with np.errstate(divide="ignore"):
        mr = float(np.exp(np.mean(np.log(np.array(miss)))))
    return ap, mr


def _clip_toolkit(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """APMRToolkits clip_all_boader: x1, y1 into [0, W-1] / [0, H-1], x2, y2 into [0, W] / [0, H]."""
    boxes = np.array(boxes, float)
    if not len(boxes) or not width or not height:
        return boxes
    boxes[:, 0] = np.minimum(np.maximum(boxes[:, 0], 0), width - 1)
    boxes[:, 1] = np.minimum(np.maximum(boxes[:, 1], 0), height - 1)
    boxes[:, 2] = np.maximum(np.minimum(boxes[:, 2], width), 0)
    boxes[:, 3] = np.maximum(np.minimum(boxes[:, 3], height), 0)
    return boxes


def detection_ground_truth(rec, kind: str, protocol: Protocol) -> tuple[np.ndarray, np.ndarray]:
    """(gt [G, 4], ignore [G]) of one image for body or face AP/MR.

    Faces, corrected: the face of every person with a visible face (its own ignore flag).
    Faces, official (APMRToolkits load_gt_boxes, if_face): a non-ignored person's visible face,
    and for every ignored person its BODY box as the ignore region.
    """
    if kind == "body":
        return rec.bodies, rec.ignore
    if protocol == "corrected":
        return rec.faces[rec.has_face], rec.ignore[rec.has_face]
    keep_face = rec.has_face & ~rec.ignore
    gt = np.concatenate([rec.faces[keep_face], rec.bodies[rec.ignore]])
    ignore = np.concatenate([np.zeros(int(keep_face.sum()), bool), np.ones(int(rec.ignore.sum()),
                                                                             bool)])
    return gt.reshape(-1, 4), ignore


def _detection_summary(pred: dict, rec, kind: str, protocol: Protocol) -> tuple[list, int]:
    gt, ignore = detection_ground_truth(rec, kind, protocol)
    dt = np.asarray(pred[kind], float).reshape(-1, 5)
    eps = 0.0
    if protocol == "official":
        dt = np.concatenate([_clip_toolkit(dt[:, :4], rec.width, rec.height), dt[:, 4:]], 1)
        gt = _clip_toolkit(gt, rec.width, rec.height)
        eps = TOOLKIT_EPS
    return caltech_match(dt, gt, ignore, eps=eps), int((~np.asarray(ignore, bool)).sum())


# ------------------------------------------------------------------ mMR^-2 (BFJDet)


def _mmr_image(pairs: np.ndarray, rec, setup: tuple, height_scale: float, thr: float = 0.5,
               protocol: Protocol = "corrected"):
    """Per-image matching of BFJDet's COCOMReval.evaluateImg: (scores, tp, det_ignore, gt_ignore)."""
    (h_lo, h_hi), (v_lo, v_hi), (f_lo, f_hi) = setup
    h_lo, h_hi, f_lo, f_hi = (x * height_scale for x in (h_lo, h_hi, f_lo, f_hi))
    body_h = rec.bodies[:, 3] - rec.bodies[:, 1] if rec.heights is None else rec.heights
    face_h = rec.faces[:, 3] - rec.faces[:, 1] if rec.face_heights is None else rec.face_heights
    face_h = np.where(rec.has_face, face_h, 0.0)  # no face: below every face-height range
    gt_ign = (rec.ignore | (body_h < h_lo) | (body_h > h_hi) | (rec.vis_ratio < v_lo)
              | (rec.vis_ratio > v_hi) | (face_h < f_lo) | (face_h > f_hi))
    order = np.argsort(gt_ign, kind="mergesort")
    gt_b, gt_f, gt_ign = rec.bodies[order], rec.faces[order], gt_ign[order]
    pairs = np.asarray(pairs, float).reshape(-1, 10)
    pairs = pairs[pairs[:, 9] != 0.0]  # only detections that carry a face
    pairs = pairs[np.argsort(-(pairs[:, 4] + pairs[:, 9]), kind="mergesort")][:1000]
    dh, dfh = pairs[:, 3] - pairs[:, 1], pairs[:, 8] - pairs[:, 6]
    pairs = pairs[(dh >= h_lo / EXP_FILTER) & (dh < h_hi * EXP_FILTER) & (dfh >= f_lo) & (dfh < f_hi)]
    num = len(pairs)
    tp, det_ign = np.zeros(num, bool), np.zeros(num, bool)
    if num and len(gt_b):
        rows = pairs
        if protocol == "official":  # computeIoU re-sorts by body score only (quirk 2)
            rows = pairs[np.argsort(-pairs[:, 4], kind="mergesort")]
        b_iou = numpy_iou(rows[:, :4], gt_b, crowd=gt_ign)
        f_iou = numpy_iou(rows[:, 5:9], gt_f)
        gt_taken = np.zeros(len(gt_b), bool)
        for d in range(num):
            best_b, best_f, best_g, best_m = min(thr, 1 - 1e-10), min(thr, 1 - 1e-10), -1, 0
            for g in range(len(gt_b)):
                if gt_taken[g]:
                    continue
                if best_m != 0 and gt_ign[g]:
                    break
                if b_iou[d, g] < best_b or f_iou[d, g] < best_f:
                    continue
                best_b, best_f, best_g = b_iou[d, g], f_iou[d, g], g
                best_m = 1 if not gt_ign[g] else -1
            if best_g < 0:
                continue
            det_ign[d] = gt_ign[best_g]
            tp[d] = True
            if best_m == 1:
                gt_taken[best_g] = True
    return pairs[:, 4] + pairs[:, 9], tp, det_ign, gt_ign


def log_average_miss_rate_coco(scores: np.ndarray, tp: np.ndarray, det_ignore: np.ndarray,
                               num_gt: int, num_images: int,
                               protocol: Protocol = "corrected") -> float:
    """Log-average miss rate over FPPI in [1e-2, 1] (COCOMReval.accumulate/summarize).

    Recall at each reference FPPI is taken at the last detection whose FPPI <= the reference.
    When there is none: corrected -> recall 0; official -> recall[-1], the FINAL recall (quirk 1).
    """
    if num_gt <= 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    tp, det_ignore = tp[order], det_ignore[order]
    keep = ~det_ignore
    tps, fps = np.cumsum(tp[keep]), np.cumsum(~tp[keep])
    recall = tps / num_gt
    fppi = fps / max(num_images, 1)
    found = []
    for ref in FPPI_REFS:
        idx = int(np.searchsorted(fppi, ref, side="right")) - 1
        if idx >= 0:
            found.append(recall[idx])
        elif protocol == "official" and len(recall):
            found.append(recall[-1])  # python index -1 wraps to the last detection
        else:
            found.append(0.0)  # the toolkit's try/except leaves 0 when there is no detection
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(1 - np.array(found)))))


def mmr_setups(protocol: Protocol) -> dict[str, tuple]:
    """Setups evaluated per protocol, keyed by the name the result is reported under.

    Official: eval_mmr() runs setups 0-3 of [All, Reasonable, Bare, Partial, Heavy] and stores
    them under Reasonable, Bare, Partial, Heavy (quirk 3).
    """
    if protocol == "corrected":
        return dict(MMR_SETUPS)
    return {key: MMR_SETUPS[name] for key, name in zip(OFFICIAL_KEYS, OFFICIAL_SETUP_ORDER[:4])}


# ------------------------------------------------------------------ per image + pooled


def image_summary(pred: dict, rec, protocol: Protocol = "corrected",
                  height_scale: float = 1.0) -> dict:
    """Everything the toolkits compute for one image before pooling (small, picklable)."""
    body, body_gt = _detection_summary(pred, rec, "body", protocol)
    face, face_gt = _detection_summary(pred, rec, "face", protocol)
    mmr = {}
    for key, setup in mmr_setups(protocol).items():
        scores, tp, det_ign, gt_ign = _mmr_image(pred["pairs"], rec, setup, height_scale,
                                                 protocol=protocol)
        mmr[key] = (scores, tp, det_ign, int((~gt_ign).sum()))
    # official AP/MR: the COCO-style reader keeps only images with a non-ignored person
    counted = protocol == "corrected" or bool((~np.asarray(rec.ignore, bool)).any())
    return {"counted": counted, "body": body, "body_gt": body_gt, "face": face,
            "face_gt": face_gt, "mmr": mmr}


def pool_summaries(summaries: list[dict], protocol: Protocol = "corrected") -> dict[str, float]:
    """Body/face AP and MR^-2 and mMR^-2 per subset from per-image summaries (in image order)."""
    out: dict[str, float] = {}
    counted = [s for s in summaries if s["counted"]]
    for kind in ("body", "face"):
        matches = [m for s in counted for m in s[kind]]
        num_gt = sum(s[f"{kind}_gt"] for s in counted)
        out[f"{kind}_AP"], out[f"{kind}_MR"] = ap_and_mr(matches, num_gt, len(counted))
    values = []
    for key in mmr_setups(protocol):
        parts = [s["mmr"][key] for s in summaries]
        if not parts:
            out[f"mMR_{key}"] = float("nan")
            continue
        value = log_average_miss_rate_coco(
            np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), sum(p[3] for p in parts), len(summaries),
            protocol)
        out[f"mMR_{key}"] = value
        values.append(value)
    finite = [v for v in values if not math.isnan(v)]
    out["mMR_mean"] = float(np.mean(finite)) if finite else float("nan")
    return out


def evaluate_detection(preds: list[dict], records: list, kind: str,
                       protocol: Protocol = "corrected") -> dict[str, float]:
    """AP and MR^-2 of bodies (`kind` = "body") or faces ("face") over a dataset."""
    matches, num_gt, num_images = [], 0, 0
    for pred, rec in zip(preds, records):
        if protocol == "official" and not (~np.asarray(rec.ignore, bool)).any():
            continue
        found, gt = _detection_summary(pred, rec, kind, protocol)
        matches, num_gt, num_images = matches + found, num_gt + gt, num_images + 1
    ap, mr = ap_and_mr(matches, num_gt, num_images)
    return {f"{kind}_AP": ap, f"{kind}_MR": mr}


def evaluate_mmr(preds: list[dict], records: list, height_scale: float = 1.0,
                 setups: dict | None = None, protocol: Protocol = "corrected") -> dict[str, float]:
    """mMR^-2 (lower is better) per subset; NaN where a subset has no person (the official
    toolkit prints -1 there)."""
    out = {}
    for name, setup in (setups or mmr_setups(protocol)).items():
        parts = [_mmr_image(p["pairs"], r, setup, height_scale, protocol=protocol)
                 for p, r in zip(preds, records)]
        if not parts:
            out[f"mMR_{name}"] = float("nan")
            continue
        scores = np.concatenate([p[0] for p in parts])
        tp = np.concatenate([p[1] for p in parts])
        det_ign = np.concatenate([p[2] for p in parts])
        num_gt = int(sum((~p[3]).sum() for p in parts))
        out[f"mMR_{name}"] = log_average_miss_rate_coco(scores, tp, det_ign, num_gt,
                                                        len(records), protocol)
    finite = [v for v in out.values() if not math.isnan(v)]
    out["mMR_mean"] = float(np.mean(finite)) if finite else float("nan")
    return out


def evaluate_all(preds: list[dict], records: list, height_scale: float = 1.0,
                 protocol: Protocol = "corrected") -> dict[str, float]:
    """Body AP/MR^-2, face AP/MR^-2 and mMR^-2 per subset (fractions, not percent)."""
    return pool_summaries([image_summary(p, r, protocol, height_scale)
                           for p, r in zip(preds, records)], protocol)
