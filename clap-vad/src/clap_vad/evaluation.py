"""eval.py body: frame-level AUC / AP of a checkpoint, globally and per participant, plus figures."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from .builders import load_data, participant_indices, score_metrics, test_scores
from .config import validate
from .data import VideoSet
from .engine import load_models
from .metrics import expand_to_frames, roc_points
from .runtime import UserError, load_checkpoint, resolve_device

MAX_PLOT_FRAMES = 20_000  # long concatenated test sequences (XD concat layout) are cut for plots


def _plot(path: Path, scores: list[np.ndarray], test: VideoSet, fps: int, label: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    frames = np.concatenate([expand_to_frames(s, fps) for s in scores])
    fpr, tpr = roc_points(frames, np.concatenate(test.frame_gt))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="frame-level ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path / "roc.png", dpi=110)
    plt.close(fig)
    files.append("roc.png")
    anomalous = [i for i, e in enumerate(test.events) if e > 0][:3]
    normal = [i for i, e in enumerate(test.events) if e == 0][:1]
    chosen = anomalous + normal
    fig, axes = plt.subplots(len(chosen), 1, figsize=(7, 1.8 * len(chosen)), squeeze=False)
    for ax, v in zip(axes[:, 0], chosen):
        f = expand_to_frames(scores[v], fps)[:MAX_PLOT_FRAMES]
        ax.plot(f, lw=1.2)
        gt = test.frame_gt[v][:MAX_PLOT_FRAMES]
        ax.fill_between(np.arange(len(gt)), 0, 1, where=gt > 0, color="red", alpha=0.2,
                        step="mid", label="ground-truth anomaly")
        ax.set(ylim=(0, 1), ylabel="score", title=test.names[v])
    axes[-1, 0].set_xlabel("frame")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path / "score_curves.png", dpi=110)
    plt.close(fig)
    files.append("score_curves.png")
    return files


def evaluate(ckpt_path: str, device: str = "auto", data_root: str | None = None) -> dict:
    """Global and per-participant frame-level AUC/AP; writes <run>/eval/test.json and PNGs.

    `data_root` replaces the one stored in the checkpoint (data moved since training).
    """
    ckpt = load_checkpoint(ckpt_path)
    cfg, models = load_models(ckpt)
    if data_root is not None:
        cfg = dataclasses.replace(cfg, data_root=data_root)
        validate(cfg, "--data_root")
    dev = resolve_device(device)
    _, test = load_data(cfg)
    fps = cfg.data_frames_per_snippet
    scores = [test_scores(m.to(dev), test, dev) for m in models]
    per_model = [score_metrics(s, test, fps) for s in scores]
    try:  # per-participant rows are diagnostics: a split that does not apply to the test set
        parts = participant_indices(cfg, test, test_set=True)  # (no scene ids) is skipped
    except UserError as err:
        print(f"warning: no per-participant test rows ({err})")
        parts = []
    parts = parts if cfg.mode != "central" else [np.arange(len(test))]
    per_participant = []
    for p, idx in enumerate(parts):
        s = scores[p if len(models) > 1 else 0]
        sub = test.subset(idx)
        row = {"participant": p, "videos": len(idx),
               **score_metrics([s[i] for i in idx], sub, fps)}
        if len(models) > 1:  # local mode: this participant's own model on the whole test set
            row.update({f"global_test_{k}": v for k, v in per_model[p].items()})
        per_participant.append(row)
    result = {
        "mode": cfg.mode, "split": cfg.split, "strategy": cfg.fl_strategy, "step": ckpt["step"],
        **{k: float(np.mean([m[k] for m in per_model])) for k in per_model[0]},
        "num_models": len(models), "per_participant": per_participant,
    }
    out_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {out_dir}: {type(err).__name__}",
                        "evaluate a checkpoint inside a writable run folder") from err
    result["figures"] = _plot(out_dir, scores[0], test, fps, f"{cfg.mode} AUC={per_model[0]['auc']:.3f}")
    (out_dir / "test.json").write_text(json.dumps(result, indent=2))
    return result
