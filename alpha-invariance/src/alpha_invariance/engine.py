"""Training loop, checkpoint round trip and evaluation (PSNR / SSIM / LPIPS, figures)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from tqdm import trange

from .config import Config, config_from_dict, config_to_json
from .data import SceneData, View, build_scene_data, crop_view
from .model import ModelSpec, RadianceFieldModel
from .runtime import (
    CheckpointError,
    MetricsLogger,
    UserError,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    rng_state,
    save_checkpoint,
    seed_everything,
    set_determinism,
    set_rng_state,
)


def load_data(cfg: Config) -> SceneData:
    return build_scene_data(cfg.data_kind, cfg.data_root, cfg.data_scene_scale,
                            image_size=cfg.data_image_size, num_train=cfg.data_num_train_views,
                            num_test=cfg.data_num_test_views, downscale=cfg.data_downscale,
                            white_bkgd=cfg.data_white_bkgd, near=cfg.data_near,
                            far=cfg.data_far, seed=cfg.seed)


def model_spec(cfg: Config, data: SceneData) -> ModelSpec:
    """Unpack Config + the scene's (scaled) extent into the model's own spec."""
    return ModelSpec(
        family=cfg.model_family, recipe=cfg.recipe, near=data.near, far=data.far,
        bbox=(tuple(data.bbox[0].tolist()), tuple(data.bbox[1].tolist())),
        num_samples=cfg.model_num_samples, width=cfg.model_width, depth=cfg.model_depth,
        pe_freqs=cfg.model_pe_freqs, grid_res=cfg.model_grid_res,
        tensorf_rank=cfg.model_tensorf_rank, hash_levels=cfg.model_hash_levels,
        hash_log2_size=cfg.model_hash_log2_size, hash_max_res=cfg.model_hash_max_res,
        raw_noise_std=cfg.model_raw_noise_std,
        target_transmittance=cfg.recipe_target_transmittance, white_bkgd=data.white_bkgd)


def lr_factor(step: int, total: int, final_ratio: float) -> float:
    """Exponential decay from 1 to final_ratio over `total` steps (NeRF / DVGO style)."""
    return final_ratio ** (step / max(total, 1))


def train_step(model: RadianceFieldModel, optimizer: torch.optim.Optimizer, rays_o: torch.Tensor,
               rays_d: torch.Tensor, rgb: torch.Tensor, step: int,
               generator: torch.Generator | None = None) -> dict[str, float]:
    """One photometric MSE step on a ray batch; non-finite values stop with model and step."""
    model.train()
    out = model(rays_o, rays_d, perturb=True, generator=generator)
    if not torch.isfinite(out["raw"]).all():
        bad = int((~torch.isfinite(out["raw"])).sum())
        raise FloatingPointError(f"non-finite densities ({bad} samples) in model "
                                 f"{model.spec.family} (recipe={model.spec.recipe}) at step {step}")
    loss = torch.mean((out["rgb"] - rgb) ** 2)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss in model {model.spec.family} at step {step}: "
                                 f"{{'mse': {float(loss)}}}")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    mse = loss.detach()
    return {"mse": float(mse), "psnr": float(-10 * torch.log10(mse.clamp_min(1e-12))),
            "mean_transmittance": float(out["final_transmittance"].detach().mean())}


@torch.no_grad()
def init_statistics(model: RadianceFieldModel, data: SceneData, num_rays: int = 1024,
                    seed: int = 0) -> dict[str, float]:
    """Transmittance of whole rays through the scene at init (Sec. 4.2): mean / min / max."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, data.rays_o.shape[0], (num_rays,), generator=gen)
    device = next(model.parameters()).device
    model.eval()
    out = model(data.rays_o[idx].to(device), data.rays_d[idx].to(device))
    ft = out["final_transmittance"]
    return {"init_T_mean": float(ft.mean()), "init_T_min": float(ft.min()),
            "init_T_max": float(ft.max())}


@torch.no_grad()
def render_view(model: RadianceFieldModel, view: View, chunk: int) -> dict[str, torch.Tensor]:
    """Render one held-out view in chunks: rgb [H, W, 3], depth [H, W], acc [H, W]."""
    model.eval()
    device = next(model.parameters()).device
    parts: dict[str, list] = {"rgb": [], "depth": [], "acc": []}
    for i in range(0, view.rays_o.shape[0], chunk):
        out = model(view.rays_o[i:i + chunk].to(device), view.rays_d[i:i + chunk].to(device))
        for key, chunks in parts.items():
            chunks.append(out[key].cpu())
    shape = (view.height, view.width)
    return {k: torch.cat(v).view(*shape, -1).squeeze(-1) for k, v in parts.items()}


def build_model(cfg: Config, data: SceneData, device: torch.device) -> RadianceFieldModel:
    return RadianceFieldModel(model_spec(cfg, data)).to(device)


def load_model(ckpt: dict, device: torch.device | str = "cpu",
               expect: ModelSpec | None = None) -> RadianceFieldModel:
    """Rebuild the model from ckpt['spec'] and load weights strictly.

    `expect`: the spec the current config builds; a checkpoint of another family, variant or
    size raises CheckpointError naming the fields that differ.
    """
    try:
        spec_dict = dict(ckpt["spec"])
        spec_dict["bbox"] = tuple(tuple(float(v) for v in c) for c in spec_dict["bbox"])
        spec = ModelSpec(**spec_dict)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError("checkpoint has no valid model spec",
                              f"{type(err).__name__}; was it written by this version?") from None
    if expect is not None:
        diff = {f.name: (getattr(spec, f.name), getattr(expect, f.name))
                for f in dataclasses.fields(ModelSpec)
                if f.name not in ("near", "far", "bbox") and getattr(spec, f.name) !=
                getattr(expect, f.name)}
        if diff:
            text = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diff.items())
            raise CheckpointError(f"checkpoint holds another model configuration ({text})",
                                  "use a new --out_dir or the checkpoint's settings")
    model = RadianceFieldModel(spec)
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint weights do not match the {spec.family} architecture",
                              f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    return model.to(device)


def fit(cfg: Config) -> dict[str, float]:
    """Train one model on one scene at scale k; returns the final test metrics."""
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    data = load_data(cfg)
    model = build_model(cfg, data, device)
    optimizer = torch.optim.Adam(model.param_groups(cfg.lr, cfg.lr_grid), eps=1e-15)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    gen = torch.Generator().manual_seed(cfg.seed)
    logger = MetricsLogger(run_dir, wandb=cfg.wandb, config=dataclasses.asdict(cfg),
                           project="alpha-invariance")
    start = 0
    last = run_dir / "ckpt" / "last.pt"
    ckpt = resume_checkpoint(last.parent)
    if ckpt is not None:  # resume (last.pt, or last.prev.pt when last.pt is unreadable)
        model = load_model(ckpt, device, expect=model.spec)
        optimizer = torch.optim.Adam(model.param_groups(cfg.lr, cfg.lr_grid), eps=1e-15)
        try:
            optimizer.load_state_dict(ckpt["optimizer"])
            gen.set_state(ckpt["generator"])
        except (KeyError, ValueError, RuntimeError, TypeError) as err:
            raise CheckpointError(f"checkpoint in {last.parent} has no usable optimizer/RNG state",
                                  type(err).__name__) from None
        set_rng_state(ckpt.get("rng", {}))
        start = int(ckpt["step"])
        print(f"resumed from {last.parent} at step {start}", flush=True)
    else:
        logger.log(0, split="init", **init_statistics(model, data, seed=cfg.seed))

    def save(step: int) -> None:
        save_checkpoint(last, step=step, config=dataclasses.asdict(cfg),
                        spec=dataclasses.asdict(model.spec), model=model.state_dict(),
                        optimizer=optimizer.state_dict(), generator=gen.get_state(),
                        rng=rng_state())

    bar = trange(start, cfg.steps, desc=f"{cfg.model_family} k={cfg.data_scene_scale:g}",
                 disable=cfg.steps - start < 2, mininterval=10)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, cfg.steps, cfg.lr_final_ratio)
        idx = torch.randint(0, data.rays_o.shape[0], (cfg.batch_rays,), generator=gen)
        metrics = train_step(model, optimizer, data.rays_o[idx].to(device),
                             data.rays_d[idx].to(device), data.rgb[idx].to(device), step, gen)
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            if device.type == "cuda":  # issue 24: peak CUDA memory in every train record
                metrics["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            logger.log(step + 1, progress=bar, **metrics)
        if cfg.eval_every and (step + 1) % cfg.eval_every == 0 and step + 1 < cfg.steps:
            logger.log(step + 1, split="test", **evaluate_model(model, data, cfg)["mean"])
        if (step + 1) % cfg.save_every == 0:
            save(step + 1)
    if start < cfg.steps and cfg.steps % cfg.save_every != 0 or ckpt is None and cfg.steps == 0:
        save(cfg.steps)  # the final state, unless the loop just saved it (or nothing ran)
    final = evaluate_model(model, data, cfg)["mean"]
    logger.log(max(cfg.steps, start), split="test", **final)
    logger.close()
    return {**final, "run_dir": str(run_dir)}


def eval_views(data: SceneData, cfg: Config) -> list[View]:
    """The held-out views evaluated: the first eval_num_views (0 = all), cropped to eval_crop."""
    return [crop_view(v, cfg.eval_crop) for v in data.test_views[: cfg.eval_num_views or None]]


def evaluate_model(model: RadianceFieldModel, data: SceneData, cfg: Config,
                   lpips_metric=None) -> dict:
    """Metrics on the held-out views; per-view lists and means."""
    from .metrics import psnr, ssim

    views = eval_views(data, cfg)
    per_view, renders = [], []
    for view in views:
        out = render_view(model, view, cfg.eval_chunk)
        gt = view.rgb.view(view.height, view.width, 3)
        rec = {"psnr": psnr(out["rgb"], gt), "ssim": ssim(out["rgb"].clamp(0, 1), gt)}
        if lpips_metric is not None:
            rec["lpips"] = lpips_metric(out["rgb"].clamp(0, 1), gt)
        if view.depth is not None:
            gt_d = view.depth.view(view.height, view.width)
            fg = (gt_d > data.near) & (gt_d < data.far)  # rays that hit a surface
            rec["depth_abs_rel"] = float(((out["depth"] - gt_d).abs() / gt_d)[fg].mean())
        per_view.append(rec)
        renders.append(out)
    mean = {k: sum(r[k] for r in per_view) / len(per_view) for k in per_view[0]}
    return {"mean": mean, "per_view": per_view, "renders": renders}


def evaluate(ckpt_path: str | Path, overrides: dict | None = None) -> dict:
    """Load <run>/ckpt/last.pt, evaluate on held-out views, write <run>/eval/test.json + PNGs.

    `overrides`: evaluation-only Config fields (eval_num_views, eval_crop, eval_chunk, device,
    eval_lpips_weights); None values are ignored.
    """
    from .figures import save_view_figure
    from .metrics import LPIPSMetric

    ckpt = load_checkpoint(ckpt_path)
    try:
        cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    except (UserError, TypeError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {ckpt_path} holds an invalid config",
                              str(err)[:300]) from None
    cfg = dataclasses.replace(cfg, **{k: v for k, v in (overrides or {}).items()
                                      if v is not None})
    device = resolve_device(cfg.device)
    data = load_data(cfg)
    model = load_model(ckpt, device)
    lp = LPIPSMetric(cfg.eval_lpips_weights, device)
    result = evaluate_model(model, data, cfg, lpips_metric=lp)
    fresh = RadianceFieldModel(model.spec).to(device)  # same spec, fresh init (seeded)
    init = init_statistics(fresh, data, seed=cfg.seed)
    out_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {out_dir}: {type(err).__name__}",
                        "evaluate a copy of the run folder that you can write to") from None
    report = {"family": cfg.model_family, "recipe": cfg.recipe, "scale_k": cfg.data_scene_scale,
              "step": int(ckpt["step"]), "lpips_backbone": "pretrained" if lp.pretrained_backbone
              else "random (no weights path given)", **result["mean"], **init,
              "per_view": result["per_view"]}
    (out_dir / "test.json").write_text(json.dumps(report, indent=2))
    views = eval_views(data, cfg)
    save_view_figure(out_dir / "renders.png", views, result["renders"],
                     title=f"{cfg.model_family} recipe={cfg.recipe} k={cfg.data_scene_scale:g}")
    return report
