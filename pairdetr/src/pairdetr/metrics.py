"""Evaluation metrics of the paper: body/face AP and MR^-2, and the association metric mMR^-2.

Body / face AP and MR^-2 follow the CrowdHuman toolkit used by BFJDet and PairDETR
(APMRToolkits): detections of all images sorted by score, Caltech matching at IoU > 0.5
(non-ignored ground truth first, ignore regions matched by intersection over detection area and
then dropped), AP = trapezoidal area under the (recall, precision) points, MR^-2 = geometric mean
of the miss rate at the first point whose FPPI >= each of 9 references log-spaced in [1e-2, 1].

mMR^-2 (BFJDet, "miss matching rate"): only detections carrying a face (f_score > 0) count,
ranked by body score + face score. A detection is a true positive only when its body AND its face
overlap the SAME ground-truth person at IoU >= 0.5 (body IoU is IoA for ignored persons); each
person matches at most once. Ground truths outside a subset's body height / visibility / face
height ranges become ignore regions; detections outside the height ranges (body: x/÷ 1.25) are
dropped. The log-average of 1 - recall at FPPI in {1e-2 ... 1} is mMR^-2. Subsets (CityPersons
protocol of BFJDet/PairDETR): Reasonable, Bare, Partial, Heavy, and All.

Pixel heights scale with `height_scale` (1 for the real datasets; smaller for small synthetic
images). Inputs per image: predictions {"body" [Nb,5], "face" [Nf,5], "pairs" [Np,10]}
(postprocess.py) and a `PairRecord`.
"""

from __future__ import annotations

import math

import numpy as np

from .boxes import numpy_iou

FPPI_REFS = np.array([0.0100, 0.0178, 0.0316, 0.0562, 0.1000, 0.1778, 0.3162, 0.5623, 1.0000])
# (body height range, visibility range, face height range), BFJDet eval_cp + PairDETR's "All"
MMR_SETUPS = {
    "Reasonable": ((50, 1e10), (0.65, 1e10), (20, 1e10)),
    "Bare": ((50, 1e10), (0.9, 1e10), (20, 1e10)),
    "Partial": ((50, 1e10), (0.65, 0.9), (20, 1e10)),
    "Heavy": ((50, 1e10), (0.0, 0.65), (20, 1e10)),
    "All": ((20, 1e10), (0.2, 1e10), (20, 1e10)),
}
EXP_FILTER = 1.25


# ------------------------------------------------------------------ AP / MR (CrowdHuman toolkit)


def caltech_match(dt: np.ndarray, gt: np.ndarray, gt_ignore: np.ndarray,
                  thr: float = 0.5) -> list[tuple[float, int]]:
    """Match one image's detections. dt [D, 5] xyxy+score, gt [G, 4] xyxy, gt_ignore [G] bool.

    Returns (score, 1 = true positive / 0 = false positive) for every non-ignored detection.
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
    iou = numpy_iou(dt[:, :4], gt)
    ioa = numpy_iou(dt[:, :4], gt, crowd=np.ones(len(gt), bool))
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
    fppi = fp / num_images
    miss = []
    for ref in FPPI_REFS:
        idx = np.nonzero(fppi >= ref)[0]
        miss.append(1 - recall[idx[0] if len(idx) else len(fppi) - 1])
    with np.errstate(divide="ignore"):
        mr = float(np.exp(np.mean(np.log(np.array(miss)))))
    return ap, mr


def evaluate_detection(preds: list[dict], records: list, kind: str) -> dict[str, float]:
    """AP and MR^-2 of bodies (`kind` = "body") or faces ("face") over a dataset."""
    matches, num_gt = [], 0
    for pred, rec in zip(preds, records):
        if kind == "body":
            gt, ignore = rec.bodies, rec.ignore
        else:
            gt, ignore = rec.faces[rec.has_face], rec.ignore[rec.has_face]
        num_gt += int((~ignore).sum())
        matches += caltech_match(pred[kind], gt, ignore)
    ap, mr = ap_and_mr(matches, num_gt, len(records))
    return {f"{kind}_AP": ap, f"{kind}_MR": mr}


# ------------------------------------------------------------------ mMR^-2 (BFJDet)


def _mmr_image(pairs: np.ndarray, rec, setup: tuple, height_scale: float, thr: float = 0.5):
    """Per-image matching of BFJDet's COCOMReval.evaluateImg: (scores, tp, det_ignore, gt_ignore)."""
    (h_lo, h_hi), (v_lo, v_hi), (f_lo, f_hi) = setup
    h_lo, h_hi, f_lo, f_hi = (x * height_scale for x in (h_lo, h_hi, f_lo, f_hi))
    body_h = rec.bodies[:, 3] - rec.bodies[:, 1]
    face_h = np.where(rec.has_face, rec.faces[:, 3] - rec.faces[:, 1], 0.0)
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
        b_iou = numpy_iou(pairs[:, :4], gt_b, crowd=gt_ign)
        f_iou = numpy_iou(pairs[:, 5:9], gt_f)
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
                               num_gt: int, num_images: int) -> float:
    """Log-average miss rate over FPPI in [1e-2, 1] (COCOMReval.accumulate/summarize).

    Recall at each reference FPPI is taken at the last detection whose FPPI <= the reference;
    when there is none the recall is 0 (the Python port wraps to the last recall; see README).
    """
    if num_gt <= 0:
        return float("nan")
    order = np.argsort(-scores, kind="mergesort")
    tp, det_ignore = tp[order], det_ignore[order]
    keep = ~det_ignore
    tps, fps = np.cumsum(tp[keep]), np.cumsum(~tp[keep])
    recall = tps / num_gt
    fppi = fps / num_images
    found = []
    for ref in FPPI_REFS:
        idx = int(np.searchsorted(fppi, ref, side="right")) - 1
        found.append(recall[idx] if idx >= 0 else 0.0)
    with np.errstate(divide="ignore"):
        return float(np.exp(np.mean(np.log(1 - np.array(found)))))


def evaluate_mmr(preds: list[dict], records: list, height_scale: float = 1.0,
                 setups: dict | None = None) -> dict[str, float]:
    """mMR^-2 (lower is better) on each occlusion subset; NaN where a subset has no person."""
    out = {}
    for name, setup in (setups or MMR_SETUPS).items():
        parts = [_mmr_image(p["pairs"], r, setup, height_scale) for p, r in zip(preds, records)]
        if not parts:
            out[f"mMR_{name}"] = float("nan")
            continue
        scores = np.concatenate([p[0] for p in parts])
        tp = np.concatenate([p[1] for p in parts])
        det_ign = np.concatenate([p[2] for p in parts])
        num_gt = int(sum((~p[3]).sum() for p in parts))
        out[f"mMR_{name}"] = log_average_miss_rate_coco(scores, tp, det_ign, num_gt, len(records))
    finite = [v for v in out.values() if not math.isnan(v)]
    out["mMR_mean"] = float(np.mean(finite)) if finite else float("nan")
    return out


def evaluate_all(preds: list[dict], records: list, height_scale: float = 1.0) -> dict[str, float]:
    """Body AP/MR^-2, face AP/MR^-2 and mMR^-2 per subset (fractions, not percent)."""
    return {**evaluate_detection(preds, records, "body"),
            **evaluate_detection(preds, records, "face"),
            **evaluate_mmr(preds, records, height_scale)}
