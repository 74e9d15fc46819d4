"""Evaluation (Sec. 4): patch search, linear probe, rotation consistency, WSI-level search with FPS
vs exhaustive tiling; writes <run>/eval/metrics.json and figures.

Shapes: eval images uint8 [N, S, S, 3] with S >= input * sqrt(2); the model sees the central
input x input crop of the (possibly rotated) image, so rotations never create empty corners.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import metrics as M
from .augment import eval_transform, rotate_center_crop
from .config import Config
from .data import eval_sets, read_slide_labels
from .fps import Selection, exhaustive_tiles, fps_select, read_patches
from .model import PathDinoViT
from .slide import open_slide


@torch.no_grad()
def embed(backbone: PathDinoViT, images: torch.Tensor, size: int, device: torch.device,
          batch: int = 64) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> CLS embeddings [N, D] (float32, CPU)."""
    backbone.eval()
    out = [backbone(eval_transform(images[i:i + batch], size).to(device)).float().cpu()
           for i in range(0, len(images), batch)]
    return torch.cat(out) if out else torch.zeros(0, backbone.embed_dim)


def _views(images: np.ndarray, angles: np.ndarray, size: int) -> torch.Tensor:
    """Rotate image i by angles[i] and centre-crop -> uint8 [N, 3, size, size]."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2)  # [N, 3, S, S]
    return torch.stack([rotate_center_crop(img, float(a), size) for img, a in zip(x, angles)])


@functools.lru_cache(maxsize=4)
def _cached_sets(data_eval_root, size, per_class, num_classes, bias, seed):
    return eval_sets(data_eval_root, size, per_class, num_classes, bias, seed)


def _sets(cfg: Config):
    return _cached_sets(cfg.data_eval_root, cfg.model_img_size, cfg.data_num_eval_per_class,
                        cfg.data_num_classes, cfg.data_orientation_bias_deg, cfg.seed)


def knn_probe(cfg: Config, backbone: PathDinoViT, device: torch.device) -> dict[str, float]:
    """Cheap in-training monitor: leave-one-out top-1 accuracy per eval set (unrotated)."""
    out = {}
    for name, (images, labels) in _sets(cfg).items():
        feats = embed(backbone, _views(images, np.zeros(len(images)), cfg.model_img_size),
                      cfg.model_img_size, device).numpy()
        out[f"{name}_knn_top1_acc"] = M.knn_search(feats, feats, labels, labels, (1,))[
            "top1_acc"]
    return out


def patch_level(cfg: Config, backbone: PathDinoViT, device: torch.device,
                images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """kNN search, linear probe and rotation consistency on one labelled set."""
    size, rng = cfg.model_img_size, np.random.default_rng(cfg.seed + 7)
    base = embed(backbone, _views(images, np.zeros(len(images)), size), size, device)
    rot_angles = rng.uniform(0, 360, len(images))
    rotated = embed(backbone, _views(images, rot_angles, size), size, device)
    x, xr = base.numpy(), rotated.numpy()
    out = {f"knn_{k}": v for k, v in M.knn_search(x, x, labels, labels).items()}
    # rotated queries against the unrotated database (query i may not retrieve patch i)
    out.update({f"knn_rotated_{k}": v for k, v in M.knn_search(xr, x, labels, labels).items()})
    train, test = M.stratified_halves(labels, cfg.seed)
    probe = M.linear_probe(x[train], labels[train], {"linear": (x[test], labels[test]),
                                                     "linear_rotated": (xr[test], labels[test])})
    out.update(probe)
    n = min(cfg.eval_rotation_patches, len(images))
    angles = np.linspace(0, 360, cfg.eval_rotation_angles, endpoint=False)
    per_angle = torch.stack([embed(backbone, _views(images[:n], np.full(n, a), size), size,
                                   device) for a in angles])  # [A, n, D]
    curve = M.rotation_consistency(base[:n], per_angle).numpy()
    centred = M.rotation_consistency(base[:n], per_angle, center=base.mean(0)).numpy()
    out["rotation_consistency"] = float(curve[1:].mean())  # angle 0 is the identity
    out["rotation_consistency_centred"] = float(centred[1:].mean())
    return out, np.stack([angles, centred])


def _slide_bags(cfg: Config, backbone, device, slides, select) -> tuple[list, dict, list]:
    bags, patches, seconds, selections = [], 0, 0.0, []
    for path, _, _ in slides:
        start = time.perf_counter()
        with open_slide(path, cfg.slide_backend) as slide:
            selection: Selection = select(slide)
            tiles = torch.from_numpy(read_patches(slide, selection)).permute(0, 3, 1, 2)
        bags.append(embed(backbone, tiles, cfg.model_img_size, device).numpy())
        seconds += time.perf_counter() - start
        patches += len(selection.coords)
        selections.append(selection)
    return bags, {"patches_per_slide": patches / len(slides), "seconds": seconds}, selections


def wsi_level(cfg: Config, backbone, device, run_dir: Path) -> tuple[dict, dict]:
    """FPS vs exhaustive tiling: patches, time (read + select + embed), WSI majority-vote search.

    Without data_slide_root, synthetic slides are written under <run_dir>/synthetic_slides_*."""
    root = cfg.data_slide_root
    if not root:
        from .synthetic import write_synthetic_slides

        root = run_dir / f"synthetic_slides_{cfg.data_num_slides}x{cfg.data_slide_size}"
        if not (root / "labels.csv").is_file():
            write_synthetic_slides(root, cfg.data_num_slides, cfg.data_num_classes,
                                   cfg.data_slide_size, 4, cfg.data_orientation_bias_deg,
                                   cfg.seed + 11)
    slides = read_slide_labels(root)
    labels = np.array([lab for _, lab, _ in slides])
    kw = {"tissue_threshold": cfg.fps_tissue_threshold,
          "output_patch_size": cfg.fps_patch_size, "thumbnail_size": cfg.fps_thumbnail_size}
    rng = np.random.default_rng(cfg.seed)
    methods = {"fps": lambda s: fps_select(s, cfg.fps_num_patches, rng=rng,
                                           coords=cfg.fps_coords, **kw),
               "exhaustive": lambda s: exhaustive_tiles(s, **kw)}
    out, first = {}, {}
    for name, select in methods.items():
        bags, stats, selections = _slide_bags(cfg, backbone, device, slides, select)
        out[name] = {**stats, **M.wsi_majority_vote(bags, labels)}
        first[name] = selections[0]
    return out, first


# settings eval.py may override on top of the checkpoint's config: data and evaluation size only
EVAL_KEYS = ("device", "seed", "data_eval_root", "data_slide_root", "data_num_eval_per_class",
             "data_num_slides", "data_slide_size", "eval_knn_k", "eval_rotation_angles",
             "eval_rotation_patches", "fps_num_patches", "fps_tissue_threshold", "fps_patch_size",
             "fps_thumbnail_size", "fps_coords", "slide_backend")


def evaluate(ckpt_path: str | Path, overrides: dict | None = None,
             out_dir: str | Path | None = None) -> dict:
    """Full evaluation of a checkpoint's teacher backbone; writes <out_dir>/metrics.json and PNGs
    (default out_dir: <run>/eval). `overrides` may set EVAL_KEYS (strings or typed values)."""
    import dataclasses

    from .config import check_config, config_from_dict
    from .figures import plot_attention, plot_fps, plot_rotation
    from .networks import load_models
    from .runtime import ConfigError, ensure_writable_dir, load_checkpoint, resolve_device

    ckpt_path = Path(ckpt_path)
    ckpt = load_checkpoint(ckpt_path)
    cfg, _, teacher = load_models(ckpt, str(ckpt_path))
    overrides = dict(overrides or {})
    not_eval = sorted(set(overrides) - set(EVAL_KEYS))
    if not_eval:
        raise ConfigError(f"eval.py cannot change {', '.join(not_eval)} (the model comes from "
                          "the checkpoint)", f"keys it takes: {', '.join(EVAL_KEYS)}")
    if overrides:
        typed = config_from_dict(overrides, where="eval.py command line")
        cfg = check_config(dataclasses.replace(cfg, **{k: getattr(typed, k) for k in overrides}))
    device = resolve_device(cfg.device)
    backbone = teacher.backbone.to(device)
    run_dir = ckpt_path.parent.parent
    out_dir = ensure_writable_dir(Path(out_dir) if out_dir else run_dir / "eval", "out_dir")
    results: dict = {"step": int(ckpt["step"]), "patch": {}}
    curves = {}
    for name, (images, labels) in _sets(cfg).items():
        results["patch"][name], curves[name] = patch_level(cfg, backbone, device, images, labels)
    results["wsi"], selections = wsi_level(cfg, backbone, device, out_dir)
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
    first_set = next(iter(_sets(cfg).values()))[0]
    plot_attention(backbone, first_set[:4], cfg.model_img_size, out_dir / "attention.png")
    plot_rotation(curves, out_dir / "rotation_consistency.png")
    plot_fps(selections["fps"], selections["exhaustive"], out_dir / "fps_selection.png")
    print(json.dumps(results, indent=2))
    return results
