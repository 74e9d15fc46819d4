"""Training loop and evaluation: fit(cfg) -> dict, evaluate(ckpt) -> dict. One step follows the
official nerfstudio pipeline: proposal annealing callback, forward on a random batch of cornea
pixels, losses, Adam steps of the three parameter groups, schedulers, sampler step callback."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import torch
from tqdm import trange

from .config import Config, config_from_dict, config_to_json
from .cornea import cap_shape
from .data import Capture, load_capture, load_ground_truth
from .evaluation import iris_error, novel_views, pose_errors, reconstruction
from .losses import field_losses, reconstruction_loss, rotation_prior_loss
from .model import EyeGeometry, EyeRadiance, SceneArch
from .runtime import (
    CheckpointError,
    ConfigError,
    MetricsLogger,
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
from .synthetic import make_synthetic_capture
from .texture import TextureArch

# Config fields that define the model or its data; a resumed run must agree on them.
ARCH_PREFIXES = ("field_", "prop_", "texture", "synth_", "data_", "model_cornea", "render_",
                 "scene_bound")


def capture_root(cfg: Config, run_dir: Path) -> Path:
    """The user's capture, or the synthetic one written once into <run_dir>/synthetic."""
    if cfg.data_root:
        return Path(cfg.data_root)
    root = run_dir / "synthetic"
    if not (root / "transforms_train.json").is_file():
        make_synthetic_capture(root, n_frames=cfg.synth_frames, image_size=cfg.synth_image_size,
                               seed=cfg.seed, noise=cfg.synth_noise,
                               iris_angular=cfg.synth_iris_angular,
                               limbus_px=cfg.synth_limbus_px or None,
                               width=cfg.synth_width or None)
    return root


def read_capture(cfg: Config, root: Path) -> Capture:
    return load_capture(root, "train", cfg.data_used_eye, cfg.data_erode_px,
                        cap_shape(cfg.model_cornea), cfg.data_on_bad_frame, cfg.data_tiff_scale)


def implementation(cfg: Config, device: torch.device) -> str:
    if cfg.model_implementation != "auto":
        return cfg.model_implementation
    if device.type != "cuda":
        return "torch"
    try:
        import tinycudann  # noqa: F401
    except ImportError:
        return "torch"
    return "tcnn"


def build_model(cfg: Config, capture: Capture, impl: str = "torch") -> EyeRadiance:
    geometry = EyeGeometry(capture.centre_px, capture.depth_mm, capture.fx, capture.fy,
                           capture.c2w, capture.width, capture.height)
    scene = SceneArch(
        hidden_dim=cfg.field_hidden_dim, hidden_dim_color=cfg.field_hidden_dim_color,
        num_levels=cfg.field_num_levels, max_res=cfg.field_max_res,
        log2_hashmap_size=cfg.field_log2_hashmap_size, proposal_samples=cfg.prop_samples,
        nerf_samples=cfg.prop_nerf_samples, proposal_max_res=cfg.prop_max_res,
        proposal_update_every=cfg.prop_update_every, proposal_warmup=cfg.prop_warmup,
        anneal_slope=cfg.prop_anneal_slope, anneal_max_iters=cfg.prop_anneal_iters,
        near=cfg.render_near, far=cfg.render_far, scene_bound=cfg.scene_bound,
        background=cfg.render_background, implementation=impl)
    texture = (TextureArch(num_levels=cfg.texture_num_levels,
                           log2_hashmap_size=cfg.texture_log2_hashmap_size,
                           hidden=cfg.texture_hidden, implementation=impl)
               if cfg.texture else None)
    return EyeRadiance(geometry, scene, texture, cap_shape(cfg.model_cornea))


def build_optimizers(cfg: Config, model: EyeRadiance):
    """Adam per official group (fields incl. texture, proposal nets: lr 1e-2 eps 1e-15; poses:
    lr 6e-4 eps 1e-8 weight decay 1e-2) with nerfstudio's exponential decay schedulers."""
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig

    groups = model.param_groups()
    settings = {"fields": (cfg.lr_fields, cfg.lr_fields_final, 1e-15, 0.0),
                "proposal_networks": (cfg.lr_fields, cfg.lr_fields_final, 1e-15, 0.0),
                "camera_opt": (cfg.lr_pose, cfg.lr_pose_final, 1e-8, cfg.pose_weight_decay)}
    if not cfg.pose_refine:  # no-pose-refinement ablation: the offsets stay at zero
        del settings["camera_opt"]
        for p in groups["camera_opt"]:
            p.requires_grad_(False)
    optimizers, schedulers = {}, {}
    for name, (lr, lr_final, eps, wd) in settings.items():
        optimizers[name] = torch.optim.Adam(groups[name], lr=lr, eps=eps, weight_decay=wd)
        sched = ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=cfg.lr_decay_steps)
        schedulers[name] = sched.setup().get_scheduler(optimizers[name], lr)
    return optimizers, schedulers


def sample_rays(n: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """`batch` distinct ray indices (official: random.sample without replacement), on the CPU."""
    if batch >= n:
        return torch.randperm(n, generator=generator)
    return torch.randperm(n, generator=generator)[:batch]


def train_step(model: EyeRadiance, optimizers: dict, schedulers: dict, capture: Capture,
               step: int, cfg: Config, generator: torch.Generator, scaler=None) -> dict[str, float]:
    """One update: L = MSE + rot_loss_mult * L_rot + interlevel + 0.002 * distortion."""
    device = capture.rgb.device
    idx = sample_rays(len(capture), cfg.batch_rays, generator).to(device)
    model.scene.before_step(step)
    amp = (torch.autocast("cuda", dtype=torch.float16)
           if scaler is not None and scaler.is_enabled() else contextlib.nullcontext())
    with amp:
        out = model(capture.camera_dirs(idx), capture.eye[idx])
        target = capture.rgb[idx][out["hit"]]
        recon = reconstruction_loss(out["rgb"].float(), target)
        loss, stats = recon, {"recon": recon.item()}
        if model.texture is not None and cfg.rot_loss_mult > 0:
            rot = rotation_prior_loss(model.texture, out["eye_coords"], cfg.rot_angles,
                                      cfg.rot_prior)  # angles from the device's global RNG
            loss = loss + cfg.rot_loss_mult * rot
            stats["rot_prior"] = rot.item()
        extra = field_losses(out["weights_list"], out["ray_samples_list"])
        loss = loss + cfg.interlevel_mult * extra["interlevel"]
        loss = loss + cfg.distortion_mult * extra["distortion"]
    stats.update(interlevel=extra["interlevel"].item(), distortion=extra["distortion"].item(),
                 hit_fraction=out["hit"].float().mean().item())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: {stats}")
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        for opt in optimizers.values():
            scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        for opt in optimizers.values():
            opt.step()
    for sched in schedulers.values():
        sched.step()
    model.scene.after_step(step)
    return {"loss": loss.item(), **stats}


def _check_resume(ckpt: dict, cfg: Config) -> None:
    saved, now = (json.loads(json.dumps(c)) for c in (ckpt["config"], dataclasses.asdict(cfg)))
    diff = {k: (saved.get(k), v) for k, v in now.items()
            if k.startswith(ARCH_PREFIXES) and saved.get(k) != v}
    if diff:
        raise ConfigError(f"the checkpoint was written with another model/data config "
                          f"(saved vs requested: {diff})", "use another out_dir")


def fit(cfg: Config) -> dict:
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    root = capture_root(cfg, run_dir)
    capture = read_capture(cfg, root)
    gt = load_ground_truth(root)
    model = build_model(cfg, capture, implementation(cfg, device)).to(device)
    optimizers, schedulers = build_optimizers(cfg, model)
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and cfg.mixed_precision)
    gen = torch.Generator().manual_seed(cfg.seed)
    ckpt_dir, start = run_dir / "ckpt", 0
    ckpt = resume_checkpoint(ckpt_dir)
    if ckpt is not None:
        _check_resume(ckpt, cfg)
        model.load_state_dict(ckpt["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
            schedulers[name].load_state_dict(ckpt["schedulers"][name])
        scaler.load_state_dict(ckpt["scaler"])
        model.scene.load_sampler_state(ckpt["sampler"])
        gen.set_state(ckpt["data_rng"])
        set_rng_state(ckpt["rng"])
        start = ckpt["step"]
        print(f"resuming from {ckpt_dir} at step {start}")
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    logger = MetricsLogger(run_dir, wandb=cfg.wandb, config=dataclasses.asdict(cfg))
    capture = capture.to(device)

    def save(step: int) -> None:
        save_checkpoint(
            ckpt_dir / "last.pt", step=step, config=dataclasses.asdict(cfg),
            model=model.state_dict(),
            optimizers={k: o.state_dict() for k, o in optimizers.items()},
            schedulers={k: s.state_dict() for k, s in schedulers.items()},
            scaler=scaler.state_dict(), sampler=model.scene.sampler_state(),
            data_rng=gen.get_state(), rng=rng_state(), data_root=str(root),
            num_eyes=capture.num_eyes, frame_ids=capture.frame_ids)

    stats: dict[str, float] = {}
    saved_at = start if ckpt is not None else -1
    bar = trange(start, cfg.steps, desc="train", dynamic_ncols=True)
    for step in bar:
        stats = train_step(model, optimizers, schedulers, capture, step, cfg, gen, scaler)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            extra = pose_errors(model, gt, capture.frame_ids)
            if device.type == "cuda":
                extra["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
            logger.log(step, "train", progress=bar, **stats, **extra)
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            save(step + 1)
            saved_at = step + 1
    if saved_at != cfg.steps:  # the final state, unless the loop just wrote it
        save(cfg.steps)
    logger.close()
    return {"run_dir": str(run_dir), "steps": cfg.steps, "skipped_eyes": len(capture.skipped),
            **{f"train_{k}": v for k, v in stats.items()},
            **pose_errors(model, gt, capture.frame_ids)}


def load_model(ckpt_path: str | Path, device: torch.device | None = None):
    """Rebuild the model from the checkpoint's own config and capture; load weights (strict)."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    device = device or resolve_device(cfg.device)
    capture = read_capture(cfg, Path(ckpt["data_root"]))
    if capture.num_eyes != ckpt.get("num_eyes"):
        raise CheckpointError(f"{ckpt_path} was trained on {ckpt.get('num_eyes')} eye images, "
                              f"{ckpt['data_root']} now has {capture.num_eyes}", "data_root")
    model = build_model(cfg, capture, implementation(cfg, device))
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt_path}: weights do not fit the model of its config",
                              type(err).__name__) from None
    return model.to(device).eval(), cfg, ckpt, capture.to(device)


def evaluate(ckpt_path: str | Path, figures: bool = True, eval_size: int = 0,
             max_rays: int = 0) -> dict:
    """Reconstruction PSNR; on synthetic captures novel-view PSNR/SSIM/LPIPS, pose errors and
    the iris error; writes <run>/eval/eval.json and figures."""
    from .metrics import LpipsMetric, psnr, ssim

    model, cfg, ckpt, capture = load_model(ckpt_path)
    if eval_size:
        cfg = dataclasses.replace(cfg, eval_size=eval_size)
    gt = load_ground_truth(ckpt["data_root"])
    run_dir = Path(ckpt_path).resolve().parent.parent
    eval_dir = run_dir / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {"step": int(ckpt["step"]), "eye_images": capture.num_eyes,
                 "skipped_eyes": len(capture.skipped),
                 **reconstruction(model, capture, max_rays=max_rays)}
    if gt is None:
        out["note"] = "no gt.json: real capture, scene metrics need ground truth"
    else:
        views = novel_views(model, gt, cfg.eval_size, cfg.eval_fov_deg)
        lp = LpipsMetric(cfg.lpips_backbone)
        out["psnr"] = sum(psnr(v["pred"], v["true"]) for v in views) / len(views)
        out["ssim"] = sum(ssim(v["pred"], v["true"]) for v in views) / len(views)
        out[lp.label] = sum(lp(v["pred"], v["true"]) for v in views) / len(views)
        out.update(pose_errors(model, gt, capture.frame_ids))
        out["iris_mse"], iris_true, iris_pred = iris_error(model, gt)
        if figures:
            from .plots import plot_iris, plot_pose_curve, plot_views

            plot_views(views, eval_dir / "scene_views.png")
            plot_iris(iris_true, iris_pred, eval_dir / "iris_texture.png")
            plot_pose_curve(run_dir / "metrics.jsonl", eval_dir / "pose_refinement.png")
    (eval_dir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
