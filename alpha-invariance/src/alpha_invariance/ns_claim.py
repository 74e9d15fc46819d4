"""nerfstudio's own NerfactoModel in the claim check (issue 22.2): the stock model (baseline,
`average_init_density` of nerfstudio's `nerfacto` preset) and the plugin's AlphaNerfactoModel
(recipe), trained on the same rays of `SceneData` at scale k with nerfstudio's full objective
(rgb + interlevel + distortion losses, proposal-sampler callbacks), then rendered on the test views.

Blender-style settings as nerfstudio documents them for bounded synthetic scenes: white
background, uniform initial proposal sampler, no scene contraction, near/far of the data (x k),
scene box = the data's box (x k). Camera optimiser and appearance embedding off (synthetic,
exact poses, constant lighting). Sizes are reduced for a CPU budget (see `small_nerfacto_args`).
"""

from __future__ import annotations

import time

import torch

from .data import SceneData
from .metrics import psnr
from .render import DEFAULT_TARGET_TRANSMITTANCE

STOCK_INIT_DENSITY = 0.01  # nerfstudio 1.1.5 `nerfacto` method preset: average_init_density


def small_nerfacto_args(levels: int = 8, log2_size: int = 15, max_res: int = 256,
                        width: int = 32, samples: int = 32) -> dict:
    """NerfactoModelConfig overrides for a CPU claim check (nerfstudio defaults in brackets):
    hash levels 8 [16], 2^15 entries [2^19], max res 256 [2048], MLP width 32 [64], field
    samples 32 [48], proposal samples (2x, 1x) the field samples [(256, 96)], proposal grids
    2^12 [2^17]. reproduce.py passes the claim preset's sizes (model_hash_*, model_width,
    model_num_samples), the same as our own Nerfacto family gets."""
    prop = {"hidden_dim": 16, "log2_hashmap_size": 12, "num_levels": 5, "use_linear": False}
    return {"num_levels": levels, "log2_hashmap_size": log2_size, "max_res": max_res,
            "hidden_dim": width, "hidden_dim_color": width,
            "num_proposal_samples_per_ray": (2 * samples, samples),
            "num_nerf_samples_per_ray": samples,
            "proposal_net_args_list": [{**prop, "max_res": 64}, {**prop, "max_res": 128}]}


def build_nerfacto(data: SceneData, recipe: bool, num_train: int, device: torch.device,
                   target_transmittance: float = DEFAULT_TARGET_TRANSMITTANCE, **overrides):
    """Stock NerfactoModel (recipe=False) or the plugin's AlphaNerfactoModel at the data's scale."""
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.data.scene_box import SceneBox
    from nerfstudio.models.nerfacto import NerfactoModelConfig

    from .ns_plugin import AlphaNerfactoModelConfig, lpips_backbone

    common = dict(near_plane=data.near, far_plane=data.far, background_color="white",
                  proposal_initial_sampler="uniform", disable_scene_contraction=True,
                  implementation="torch", use_appearance_embedding=False,
                  camera_optimizer=CameraOptimizerConfig(mode="off"), **overrides)
    if recipe:  # L = far - near, as our own families use
        cfg = AlphaNerfactoModelConfig(target_transmittance=target_transmittance,
                                       ray_length=data.far - data.near, lpips_weights="random",
                                       **common)
    else:
        cfg = NerfactoModelConfig(average_init_density=STOCK_INIT_DENSITY, **common)
    with lpips_backbone("random"):  # LPIPS is not used here; never download AlexNet
        model = cfg.setup(scene_box=SceneBox(aabb=data.bbox.clone()), num_train_data=num_train)
    return model.to(device)


def _bundle(rays_o: torch.Tensor, rays_d: torch.Tensor):
    from nerfstudio.cameras.rays import RayBundle

    n, device = rays_o.shape[0], rays_o.device
    return RayBundle(origins=rays_o, directions=rays_d,
                     pixel_area=torch.full((n, 1), 1e-6, device=device),
                     camera_indices=torch.zeros(n, 1, dtype=torch.long, device=device))


def train_nerfacto(model, data: SceneData, steps: int, batch_rays: int, lr: float,
                   lr_final_ratio: float, seed: int) -> dict:
    """nerfstudio's objective and callbacks, Adam(lr, eps 1e-15) with exponential decay."""
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation

    device = next(model.parameters()).device
    groups = model.get_param_groups()
    opt = torch.optim.Adam([{"params": p} for p in groups.values() if p], lr=lr, eps=1e-15)
    callbacks = model.get_training_callbacks(TrainingCallbackAttributes(None, None, None, None))
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * lr_final_ratio ** (step / max(steps, 1))
        for cb in callbacks:
            cb.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        idx = torch.randint(0, data.rays_o.shape[0], (batch_rays,), generator=gen)
        batch = {"image": data.rgb[idx].to(device)}
        outputs = model(_bundle(data.rays_o[idx].to(device), data.rays_d[idx].to(device)))
        metrics = model.get_metrics_dict(outputs, batch)
        loss = sum(model.get_loss_dict(outputs, batch, metrics).values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite nerfstudio nerfacto loss at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for cb in callbacks:
            cb.run_callback_at_location(step, TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
    return {"final_train_loss": float(loss)}


@torch.no_grad()
def evaluate_nerfacto(model, data: SceneData, num_views: int, chunk: int = 4096) -> dict:
    """Test PSNR (mean over views), the first view's render [H, W, 3] and init transmittance."""
    device = next(model.parameters()).device
    model.eval()
    scores, first = [], None
    for view in data.test_views[:num_views or None]:
        parts = [model(_bundle(view.rays_o[i:i + chunk].to(device),
                               view.rays_d[i:i + chunk].to(device)))["rgb"].cpu()
                 for i in range(0, view.rays_o.shape[0], chunk)]
        rgb = torch.cat(parts).view(view.height, view.width, 3)
        scores.append(psnr(rgb, view.rgb.view(view.height, view.width, 3)))
        first = rgb if first is None else first
    return {"psnr": sum(scores) / len(scores), "render": first}


def run_nerfstudio_nerfacto(data: SceneData, recipe: bool, steps: int, batch_rays: int,
                            seed: int, num_views: int, num_train: int, lr: float = 1e-2,
                            target_transmittance: float = DEFAULT_TARGET_TRANSMITTANCE,
                            device: str = "cpu", model_args: dict | None = None) -> dict:
    """One claim-check cell: build, measure init transmittance, train, evaluate."""
    torch.manual_seed(seed)
    t0 = time.time()
    model = build_nerfacto(data, recipe, num_train, torch.device(device),
                           target_transmittance=target_transmittance,
                           **(small_nerfacto_args() if model_args is None else model_args))
    with torch.no_grad():
        model.eval()
        idx = torch.randint(0, data.rays_o.shape[0], (256,), generator=torch.Generator()
                            .manual_seed(seed))
        acc = model(_bundle(data.rays_o[idx].to(device), data.rays_d[idx].to(device)))
        init_t = float((1 - acc["accumulation"]).mean())
    train_nerfacto(model, data, steps, batch_rays, lr, 0.1, seed)
    out = evaluate_nerfacto(model, data, num_views)
    return {**out, "init_T_mean": init_t, "seconds": time.time() - t0}
