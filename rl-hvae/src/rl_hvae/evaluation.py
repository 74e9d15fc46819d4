"""Evaluation: the quick in-training bound, the released representation metric, and the full
evaluation of a checkpoint (`evaluate`, used by eval.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from .config import Config, config_from_dict
from .data import ImageSet, binarize, load_split, prepare_batch
from .factory import build_model
from .metrics import (
    active_units,
    iw_log_likelihood,
    mutual_information,
    posterior_stats,
    svm_accuracy,
)
from .runtime import CheckpointError, cuda_rng_devices, load_checkpoint, resolve_device


def train_images(data: ImageSet, cfg: Config) -> torch.Tensor:
    """The training images as training sees them before batching: with `cached` binarisation,
    the one binarisation drawn per image for the whole run (the released loader memoises each
    image's first draw); otherwise the grey levels (binarised fresh per batch by `fit`)."""
    if cfg.data_binarize and cfg.data_binarization == "cached":
        return binarize(data.images, cfg.seed * 1_000_003 - 1)  # never equal to a batch seed
    return data.images


def probe_train_images(data: ImageSet, cfg: Config, max_examples: int = 0) -> torch.Tensor:
    """Training images for the SVM probes, as training sees them: the cached binarisation, or
    one fresh draw (seeded) with `fresh`, or 8-bit grey levels without binarisation."""
    n = min(max_examples or len(data), len(data))
    if not cfg.data_binarize:
        return prepare_batch(data.images[:n], None)
    if cfg.data_binarization == "cached":
        return train_images(data, cfg)[:n]
    return binarize(data.images[:n], cfg.seed * 1_000_003 - 2)


def eval_images(data: ImageSet, cfg: Config, max_examples: int = 0) -> torch.Tensor:
    """The fixed evaluation images: one static binarisation (seed 0) of the first examples."""
    images = data.images[:max_examples] if max_examples else data.images
    return prepare_batch(images, 0 if cfg.data_binarize else None)


@torch.no_grad()
def quick_eval(model, data: ImageSet, cfg: Config, device: torch.device,
               max_examples: int = 512) -> dict[str, float]:
    """ELBO and 10-sample IW bound on up to `max_examples` validation images (for the log).

    Draws its latents from a reseeded generator inside `fork_rng` over the CPU *and* every CUDA
    generator in use, so the training stream (which samples its latents on the training device)
    continues exactly as if no evaluation had run."""
    model.eval()
    x = eval_images(data, cfg, max_examples).to(device)
    with torch.random.fork_rng(devices=cuda_rng_devices()):
        torch.manual_seed(cfg.seed)
        res = iw_log_likelihood(model, x, k=10)
    return {"elbo": res["elbo"].mean().item(), "iw10": res["iw"].mean().item()}


@torch.no_grad()
def top_latent_features(model, x: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """Posterior mean of the top latent, the lower latents *sampled* on the way up (as the
    released evaluation reads `stage_datas[-1].q.mean` of a pass with use_mode=False): [N, D_L]."""
    feats = []
    for start in range(0, x.shape[0], chunk):
        posteriors, _ = model.infer(x[start:start + chunk], use_mode=False)
        feats.append(posteriors[-1].mean.flatten(1).cpu())
    return torch.cat(feats).numpy()


def released_svm_accuracy(model, x_train: torch.Tensor, y_train: np.ndarray, x_test: torch.Tensor,
                          y_test: np.ndarray, seed: int) -> float:
    """The paper's representation metric as released: one linear SVC (C = 1) fitted on the top
    latent's posterior means of the training images, accuracy on the test images."""
    with torch.random.fork_rng(devices=cuda_rng_devices()):
        torch.manual_seed(seed)
        train_f = top_latent_features(model, x_train)
        test_f = top_latent_features(model, x_test)
    return svm_accuracy(train_f, y_train, test_f, y_test)


def load_model(ckpt_path: str | Path, device: torch.device) -> tuple[torch.nn.Module, Config, dict]:
    """Rebuild the model from the checkpoint's own config and load its weights (strict)."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    data = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    model = build_model(cfg, data)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt_path}: the weights do not fit the architecture in its "
                              f"config ({str(err).splitlines()[0]})", "a checkpoint of another "
                              "version of this code?") from None
    return model.to(device).eval(), cfg, ckpt


@torch.no_grad()
def evaluate(ckpt_path: str | Path, iw_samples: int | None = None, max_examples: int | None = None,
             figures: bool = True, device_name: str = "auto") -> dict:
    """Full evaluation of a checkpoint on its validation/test split; writes <run>/eval/val.json.

    Headline: `svm_top_released`, the released metric (one SVC on the top latent, lower latents
    sampled). Per level (`levels`): KL, active units, I(x; z_l), and our linear-SVM accuracy
    from each level's posterior mean with means passed upwards. Also IW NLL (k samples), ELBO.
    """
    device = resolve_device(device_name)
    model, cfg, ckpt = load_model(ckpt_path, device)
    k = iw_samples or cfg.eval_iw_samples
    n_max = cfg.eval_max_examples if max_examples is None else max_examples
    train = load_split(cfg.data_name, cfg.data_root, "train", cfg.data_val_fraction, cfg.seed)
    val = load_split(cfg.data_name, cfg.data_root, "val", cfg.data_val_fraction, cfg.seed)
    x = eval_images(val, cfg, n_max).to(device)
    labels = val.labels[: x.shape[0]].numpy()
    x_train = probe_train_images(train, cfg, n_max).to(device)
    train_labels = train.labels[: x_train.shape[0]].numpy()
    torch.manual_seed(cfg.seed)
    res = iw_log_likelihood(model, x, k)
    released = released_svm_accuracy(model, x_train, train_labels, x, labels, cfg.seed)
    q_val, q_train = posterior_stats(model, x), posterior_stats(model, x_train)
    gen = torch.Generator().manual_seed(cfg.seed)
    levels = []
    for lvl in range(model.n_levels):
        au, _ = active_units(q_val[lvl].mean.cpu())
        levels.append({
            "level": lvl + 1, "units": int(q_val[lvl].mean.shape[1]),
            "kl": res["kl"][lvl].mean().item(),
            "active_units": au, "mutual_information": mutual_information(
                type(q_val[lvl])(q_val[lvl].mean.cpu(), q_val[lvl].std.cpu()), gen),
            "svm_accuracy": svm_accuracy(q_train[lvl].mean.cpu().numpy(), train_labels,
                                         q_val[lvl].mean.cpu().numpy(), labels),
        })
    n_pixels = int(x[0].numel())
    out = {"step": int(ckpt["step"]), "method": cfg.method, "arch_skips": cfg.arch_skips,
           "examples": int(x.shape[0]), "train_examples": int(x_train.shape[0]),
           "svm_top_released": released, "iw_samples": k, "nll": -res["iw"].mean().item(),
           "elbo": res["elbo"].mean().item(),
           "bits_per_dim": -res["iw"].mean().item() / (n_pixels * math.log(2)), "levels": levels}
    eval_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "val.json").write_text(json.dumps(out, indent=2))
    if figures:
        from .plots import plot_levels, plot_skip_reconstructions

        plot_levels(levels, eval_dir / "levels.png", title=f"{cfg.method}, step {out['step']}")
        plot_skip_reconstructions(model, x[:8], eval_dir / "skip_reconstructions.png")
    return out
