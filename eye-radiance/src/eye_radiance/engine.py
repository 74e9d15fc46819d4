"""Training loop and evaluation: fit(cfg) -> dict, evaluate(ckpt) -> dict."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from tqdm import trange

from .config import Config, config_from_dict, config_to_json
from .data import RaySet, load_ground_truth, load_sequence, make_synthetic_sequence
from .geometry import axis_angle_error_deg, refine_pose
from .losses import photometric_loss, radial_prior
from .model import FieldArch, IrisTexture, PoseCorrections, SceneField
from .render import render_cornea_rays, render_field
from .runtime import (
    MetricsLogger,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

# Config fields that define the model or its data; a resumed checkpoint must agree on them.
ARCH_PREFIXES = ("field_", "texture", "synth_", "data_root")


def sequence_root(cfg: Config, run_dir: Path) -> Path:
    """The user's sequence, or the synthetic one rendered once into <run_dir>/synthetic."""
    if cfg.data_root:
        return Path(cfg.data_root)
    root = run_dir / "synthetic"
    if not (root / "cameras.json").is_file():
        make_synthetic_sequence(
            root,
            n_frames=cfg.synth_frames,
            image_size=cfg.synth_image_size,
            seed=cfg.seed,
            noise=cfg.synth_noise,
            pose_noise_deg=cfg.synth_pose_noise_deg,
            pose_noise_mm=cfg.synth_pose_noise_mm,
            iris_angular=cfg.synth_iris_angular,
        )
    return root


class EyeModel(torch.nn.Module):
    """Scene field + iris texture + pose corrections, built from the config and the data size."""

    def __init__(self, cfg: Config, n_frames: int, n_eyes: int) -> None:
        super().__init__()
        self.field = SceneField(
            FieldArch(
                aabb_min=cfg.field_aabb_min,
                aabb_max=cfg.field_aabb_max,
                num_levels=cfg.field_num_levels,
                log2_hashmap_size=cfg.field_log2_hashmap_size,
                min_res=cfg.field_min_res,
                max_res=cfg.field_max_res,
                hidden=cfg.field_hidden,
            )
        )
        self.texture = IrisTexture(n_eyes) if cfg.texture else None
        self.poses = PoseCorrections(n_frames, n_eyes)


def render_batch(
    model: EyeModel, data: RaySet, idx: torch.Tensor, cfg: Config, refine: bool, stratified: bool
) -> dict[str, torch.Tensor]:
    frame, eye = data.frame[idx], data.eye[idx]
    delta = model.poses(frame, eye)
    return render_cornea_rays(
        model.field,
        model.texture,
        data.dirs[idx],
        data.c_init[frame, eye],
        data.g_init[frame, eye],
        eye,
        delta if refine else delta.detach(),
        cfg.render_near,
        cfg.render_far,
        cfg.render_samples,
        stratified,
    )


def train_step(
    model: EyeModel,
    optimizer: torch.optim.Optimizer,
    data: RaySet,
    step: int,
    cfg: Config,
    generator: torch.Generator,
) -> dict[str, float]:
    """One update on a random batch of cornea rays: L_recon + lambda_radial * L_radial."""
    idx = torch.randint(0, len(data), (cfg.batch_rays,), generator=generator)
    refine = cfg.pose_refine and step >= cfg.pose_refine_start
    out = render_batch(model, data, idx, cfg, refine, stratified=True)
    recon = photometric_loss(out["rgb"], data.rgb[idx], out["hit"])
    loss = recon
    stats = {"recon": recon.item(), "hit_fraction": out["hit"].float().mean().item()}
    if model.texture is not None and cfg.radial_weight > 0:
        radial = radial_prior(
            model.texture, out["uv"][out["hit"]], data.eye[idx][out["hit"]], generator
        )
        loss = loss + cfg.radial_weight * radial
        stats["radial"] = radial.item()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss at step {step}: {stats}; lower the lrs")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss.item(), **stats}


def pose_errors(model: EyeModel, data: RaySet, gt: dict | None) -> dict[str, float]:
    """Mean limbus-centre (mm) and axis (deg) errors of the initial and refined poses vs. truth."""
    if gt is None:
        return {}
    true = [gt["poses"][i] for i in data.frame_ids]
    c_true = torch.tensor([[e["c"] for e in f] for f in true], dtype=torch.float32)
    g_true = torch.tensor([[e["g"] for e in f] for f in true], dtype=torch.float32)
    with torch.no_grad():
        c_ref, g_ref = refine_pose(data.c_init, data.g_init, model.poses.delta)
    return {
        "pose_center_err_init_mm": (data.c_init - c_true).norm(dim=-1).mean().item(),
        "pose_axis_err_init_deg": axis_angle_error_deg(data.g_init, g_true).mean().item(),
        "pose_center_err_mm": (c_ref - c_true).norm(dim=-1).mean().item(),
        "pose_axis_err_deg": axis_angle_error_deg(g_ref, g_true).mean().item(),
    }


def fit(cfg: Config) -> dict:
    """Train per `cfg`; resumes from <out_dir>/ckpt/last.pt when present. Returns final metrics."""
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    device = resolve_device(cfg.device)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    root = sequence_root(cfg, run_dir)
    data = load_sequence(root, cfg.data_on_bad_frame)
    if data.skipped:
        print(f"skipped {len(data.skipped)} frame(s): {data.skipped}")
    gt = load_ground_truth(root)
    model = EyeModel(cfg, data.c_init.shape[0], data.c_init.shape[1]).to(device)
    groups = [
        {"params": model.field.parameters(), "lr": cfg.lr_field},
        {"params": model.poses.parameters(), "lr": cfg.lr_pose},
    ]
    if model.texture is not None:
        groups.append({"params": model.texture.parameters(), "lr": cfg.lr_texture})
    optimizer = torch.optim.Adam(groups, eps=1e-15)
    gen = torch.Generator().manual_seed(cfg.seed)
    last = run_dir / "ckpt" / "last.pt"
    start = 0
    if last.is_file():
        ckpt = load_checkpoint(last)
        saved, now = (json.loads(json.dumps(c)) for c in (ckpt["config"], dataclasses.asdict(cfg)))
        diff = {
            k: (saved.get(k), v)
            for k, v in now.items()
            if k.startswith(ARCH_PREFIXES) and saved.get(k) != v
        }
        if diff:
            raise ValueError(
                f"checkpoint {last} was written with another model/data config "
                f"(saved vs. requested: {diff}); use another out_dir"
            )
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["rng"])
        torch.set_rng_state(ckpt["rng_cpu"])  # the sampler's stratification uses the global RNG
        start = ckpt["step"]
        print(f"resuming from {last} at step {start}")
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    logger = MetricsLogger(run_dir, wandb=cfg.wandb, config=dataclasses.asdict(cfg))

    def save(step: int) -> None:
        save_checkpoint(
            last,
            step=step,
            config=dataclasses.asdict(cfg),
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            rng=gen.get_state(),
            rng_cpu=torch.get_rng_state(),
            data_root=str(root),
            n_frames=data.c_init.shape[0],
            n_eyes=data.c_init.shape[1],
        )

    stats: dict[str, float] = {}
    data = _to(data, device)
    bar = trange(start, cfg.steps, desc="train", dynamic_ncols=True)
    for step in bar:
        stats = train_step(model, optimizer, data, step, cfg, gen)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            logger.log(step, "train", progress=bar, **stats, **pose_errors(model, data, gt))
        if cfg.save_every and (step + 1) % cfg.save_every == 0:
            save(step + 1)
    save(cfg.steps)
    logger.close()
    return {
        "run_dir": str(run_dir),
        "steps": cfg.steps,
        "skipped_frames": len(data.skipped),
        **{f"train_{k}": v for k, v in stats.items()},
        **pose_errors(model, data, gt),
    }


def _to(data: RaySet, device: torch.device) -> RaySet:
    return dataclasses.replace(
        data,
        **{
            f.name: getattr(data, f.name).to(device)
            for f in dataclasses.fields(data)
            if isinstance(getattr(data, f.name), torch.Tensor)
        },
    )


def load_model(ckpt_path: str | Path) -> tuple[EyeModel, Config, dict]:
    """Rebuild the model from the checkpoint's own config and load its weights (strict)."""
    ckpt = load_checkpoint(ckpt_path)
    cfg = config_from_dict(ckpt["config"], where=str(ckpt_path))
    model = EyeModel(cfg, ckpt["n_frames"], ckpt["n_eyes"])
    try:
        model.load_state_dict(ckpt["model"], strict=True)
    except RuntimeError as err:
        raise ValueError(f"{ckpt_path}: weights do not fit the model of its config: {err}") from err
    return model.eval(), cfg, ckpt


@torch.no_grad()
def novel_views(model: EyeModel, cfg: Config, gt: dict, data: RaySet) -> list[dict]:
    """Ground truth and rendered views of the scene from virtual cameras at the eyes' mean
    position, looking towards the camera (what the cornea reflections observe)."""
    from .scene import Scene, look_at_dirs, trace_scene

    scene = Scene.from_dict(gt["scene"])
    centre = data.c_init.reshape(-1, 3).mean(0).double()
    views = []
    for offset in ((0.0, 0.0, 0.0), (-60.0, 0.0, 0.0), (60.0, 30.0, 0.0)):
        eye = centre + torch.tensor(offset, dtype=torch.float64)
        dirs = look_at_dirs(eye, -eye, cfg.eval_size, cfg.eval_fov_deg).reshape(-1, 3)
        origins = eye.expand_as(dirs)
        true = trace_scene(scene, origins, dirs).float()
        pred = torch.cat(
            [
                render_field(
                    model.field,
                    o,
                    d,
                    cfg.render_near,
                    cfg.render_far,
                    cfg.render_samples,
                    stratified=False,
                )
                for o, d in zip(origins.float().split(4096), dirs.float().split(4096))
            ]
        )
        size = (cfg.eval_size, cfg.eval_size, 3)
        views.append({"true": true.reshape(size), "pred": pred.clamp(0, 1).reshape(size)})
    return views


@torch.no_grad()
def iris_error(
    model: EyeModel, gt: dict, size: int = 48
) -> tuple[float, torch.Tensor, torch.Tensor]:
    """MSE of the learned iris texture (eye 0) against the true one on the unit disc."""
    from .scene import iris_texture

    lin = (torch.arange(size, dtype=torch.float32) + 0.5) / size * 2 - 1
    vv, uu = torch.meshgrid(lin, lin, indexing="ij")
    uv = torch.stack([uu, vv], -1).reshape(-1, 2)
    inside = uv.norm(dim=-1) <= 1
    true = iris_texture(uv.double(), angular=gt["iris_angular"]).float()
    pred = (
        model.texture(uv, torch.zeros(len(uv), dtype=torch.int64))
        if model.texture is not None
        else torch.zeros_like(true)
    )
    mse = ((pred - true) ** 2)[inside].mean().item()
    mask = inside[:, None].float()
    return mse, (true * mask).reshape(size, size, 3), (pred * mask).reshape(size, size, 3)


def evaluate(ckpt_path: str | Path, figures: bool = True) -> dict:
    """Scene PSNR/SSIM/LPIPS on novel views, pose errors, iris error; writes <run>/eval/."""
    from .metrics import LpipsMetric, psnr, ssim

    model, cfg, ckpt = load_model(ckpt_path)
    data = load_sequence(ckpt["data_root"], cfg.data_on_bad_frame)
    gt = load_ground_truth(ckpt["data_root"])
    eval_dir = Path(ckpt_path).resolve().parent.parent / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    out: dict = {
        "step": int(ckpt["step"]),
        "frames": int(data.c_init.shape[0]),
        "skipped_frames": len(data.skipped),
    }
    if gt is None:
        out["note"] = "no gt.json: real capture, only qualitative renders are possible"
    else:
        views = novel_views(model, cfg, gt, data)
        lp = LpipsMetric(cfg.lpips_backbone)
        out["psnr"] = sum(psnr(v["pred"], v["true"]) for v in views) / len(views)
        out["ssim"] = sum(ssim(v["pred"], v["true"]) for v in views) / len(views)
        out[lp.label] = sum(lp(v["pred"], v["true"]) for v in views) / len(views)
        out.update(pose_errors(model, data, gt))
        out["iris_mse"], iris_true, iris_pred = iris_error(model, gt)
        if figures:
            from .plots import plot_iris, plot_pose_curve, plot_views

            plot_views(views, eval_dir / "scene_views.png")
            plot_iris(iris_true, iris_pred, eval_dir / "iris_texture.png")
            plot_pose_curve(
                Path(ckpt_path).resolve().parent.parent / "metrics.jsonl",
                eval_dir / "pose_refinement.png",
            )
    (eval_dir / "eval.json").write_text(json.dumps(out, indent=2))
    return out
