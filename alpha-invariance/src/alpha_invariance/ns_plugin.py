"""nerfstudio method plugin: `ns-train alpha-nerfacto` and `ns-train alpha-vanilla-nerf`.

Registered through the `nerfstudio.method_configs` entry point in pyproject.toml; needs the
[nerfstudio] extra (nerfstudio==1.1.5). The recipe of the paper (Sec. 4) is applied to nerfstudio's
own models:

* alpha-nerfacto: nerfacto's density is `average_init_density * exp(raw)`, i.e. already an exp
  (log-space) parameterisation x = raw + log(average_init_density). The plugin sets
  average_init_density = exp(x0) with x0 = log(-log T0) - log L (render.init_log_density), so
  the whole ray has transmittance T0 at init whatever the scene size, instead of the stock
  heuristic constant (0.01 in the `nerfacto` preset).
* alpha-vanilla-nerf: nerfstudio's NeRF field ends in softplus; the plugin replaces the density
  head's activation by exp(raw + x0) (the paper's GumbelCDF alpha once composited) and zeroes the
  head so raw ~ 0 at init.

L defaults to the diagonal of the scene box (`ray_length = 0`); set it explicitly (e.g. far - near)
with `--pipeline.model.ray_length`.

Offline use: nerfstudio's models build torchmetrics' LPIPS with torchvision's pretrained AlexNet at
start-up, which downloads `alexnet-owt-7be5be79.pth` into the torch hub cache. Both plugin models
take `--pipeline.model.lpips-weights {auto,pretrained,random}`: `pretrained` is nerfstudio's own
behaviour (download if not cached); `random` builds AlexNet without weights; `auto` (default) uses
the cached or downloadable weights and, when neither works (offline, empty cache), falls back to a
randomly initialised AlexNet with a warning. Only the `lpips` eval metric depends on it; training
does not.
Deviation: nerfstudio composites with alpha = 1 - exp(-sigma * delta) on the product; in float32 it
equals the log-space form exp(x + log delta) except at over/underflow (see render.py for the
log-space compositor used by this package's own models).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

try:
    from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
    from nerfstudio.configs.base_config import ViewerConfig
    from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
    from nerfstudio.data.datamanagers.parallel_datamanager import ParallelDataManagerConfig
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.engine.optimizers import AdamOptimizerConfig, RAdamOptimizerConfig
    from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
    from nerfstudio.engine.trainer import TrainerConfig
    from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
    from nerfstudio.models.vanilla_nerf import NeRFModel, VanillaModelConfig
    from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
    from nerfstudio.plugins.types import MethodSpecification
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("the nerfstudio plugin needs `pip install -e '.[nerfstudio]'` "
                      "(nerfstudio==1.1.5)") from err

from .render import DEFAULT_TARGET_TRANSMITTANCE, init_log_density

LPIPSWeights = Literal["auto", "pretrained", "random"]
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's AlexNet_Weights.IMAGENET1K_V1


def alexnet_cached() -> bool:
    """Whether the torch hub cache already holds torchvision's AlexNet weights."""
    return (Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE).is_file()


@contextmanager
def lpips_backbone(mode: LPIPSWeights) -> Iterator[None]:
    """While nerfstudio builds its LPIPS metric, choose how torchmetrics gets AlexNet.

    pretrained: unchanged (downloads when not cached); random: no weights; auto: pretrained when
    cached or downloadable, else random with a one-line warning on stderr.
    """
    import torchmetrics.functional.image.lpips as tm_lpips

    original = tm_lpips._get_tv_model_features

    def features(net: str, pretrained: bool = False):
        if not pretrained or mode == "pretrained":
            return original(net, pretrained)
        reason = "lpips-weights random"
        if mode == "auto":
            try:
                return original(net, True)
            except OSError as err:  # URLError offline, or an unwritable cache
                reason = f"{type(err).__name__} while fetching {ALEXNET_FILE}"
        print(f"warning: LPIPS uses a randomly initialised {net} ({reason}); its lpips values are "
              f"not comparable with published ones. Put {ALEXNET_FILE} into "
              f"{Path(torch.hub.get_dir()) / 'checkpoints'} for the real metric.",
              file=sys.stderr, flush=True)
        with torch.random.fork_rng(devices=[]):  # the same random backbone every time
            torch.manual_seed(0)
            return original(net, False)

    tm_lpips._get_tv_model_features = features
    try:
        yield
    finally:
        tm_lpips._get_tv_model_features = original


def _ray_length(config_length: float, scene_box) -> float:
    if config_length > 0:
        return config_length
    aabb = scene_box.aabb
    return float(torch.linalg.norm(aabb[1] - aabb[0]))


class ExpWithOffset(nn.Module):
    """sigma = exp(raw + x0); x0 is a fixed buffer (the high-transmittance offset)."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.register_buffer("offset", torch.tensor(float(offset)))

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.exp(torch.clamp(raw + self.offset, max=30.0))


@dataclass
class AlphaNerfactoModelConfig(NerfactoModelConfig):
    """Nerfacto with the high-transmittance init of Sec. 4.2."""

    _target: type = field(default_factory=lambda: AlphaNerfactoModel)
    target_transmittance: float = DEFAULT_TARGET_TRANSMITTANCE
    ray_length: float = 0.0  # 0 = diagonal of the scene box
    lpips_weights: LPIPSWeights = "auto"  # AlexNet for the LPIPS metric (see module docstring)


class AlphaNerfactoModel(NerfactoModel):
    config: AlphaNerfactoModelConfig

    def populate_modules(self) -> None:
        length = _ray_length(self.config.ray_length, self.scene_box)
        self.config.average_init_density = math.exp(
            init_log_density(self.config.target_transmittance, length))
        with lpips_backbone(self.config.lpips_weights):
            super().populate_modules()


@dataclass
class AlphaVanillaModelConfig(VanillaModelConfig):
    """Vanilla NeRF with the log-space density head and the init offset (Sec. 4)."""

    _target: type = field(default_factory=lambda: AlphaVanillaNeRFModel)
    target_transmittance: float = DEFAULT_TARGET_TRANSMITTANCE
    ray_length: float = 0.0  # 0 = diagonal of the scene box
    lpips_weights: LPIPSWeights = "auto"  # AlexNet for the LPIPS metric (see module docstring)


class AlphaVanillaNeRFModel(NeRFModel):
    config: AlphaVanillaModelConfig

    def populate_modules(self) -> None:
        with lpips_backbone(self.config.lpips_weights):
            super().populate_modules()
        x0 = init_log_density(self.config.target_transmittance,
                              _ray_length(self.config.ray_length, self.scene_box))
        for fld in (self.field_coarse, self.field_fine):
            head = fld.field_output_density
            head.activation = ExpWithOffset(x0)
            with torch.no_grad():
                head.net.weight.mul_(0.01)
                head.net.bias.zero_()


def _adam(lr: float, final: float, steps: int) -> dict:
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=final, max_steps=steps)}


# The settings of nerfstudio 1.1.5's stock `nerfacto` / `vanilla-nerf` presets, rebuilt here
# (importing nerfstudio.configs.method_configs from a plugin would re-enter plugin discovery).
alpha_nerfacto = MethodSpecification(
    config=TrainerConfig(
        method_name="alpha-nerfacto", steps_per_eval_batch=500, steps_per_save=2000,
        max_num_iterations=30000, mixed_precision=True,
        pipeline=VanillaPipelineConfig(
            datamanager=ParallelDataManagerConfig(dataparser=NerfstudioDataParserConfig(),
                                                  train_num_rays_per_batch=4096,
                                                  eval_num_rays_per_batch=4096),
            model=AlphaNerfactoModelConfig(eval_num_rays_per_chunk=1 << 15,
                                           camera_optimizer=CameraOptimizerConfig(mode="SO3xR3"))),
        optimizers={"proposal_networks": _adam(1e-2, 1e-4, 200000),
                    "fields": _adam(1e-2, 1e-4, 200000),
                    "camera_opt": _adam(1e-3, 1e-4, 5000)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15), vis="viewer"),
    description="Nerfacto + Alpha Invariance recipe (high-transmittance init, CVPR 2024)")

alpha_vanilla_nerf = MethodSpecification(
    config=TrainerConfig(
        method_name="alpha-vanilla-nerf",
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(dataparser=BlenderDataParserConfig()),
            model=AlphaVanillaModelConfig()),
        optimizers={"fields": {"optimizer": RAdamOptimizerConfig(lr=5e-4, eps=1e-08),
                               "scheduler": None},
                    "temporal_distortion": {"optimizer": RAdamOptimizerConfig(lr=5e-4, eps=1e-08),
                                            "scheduler": None}}),
    description="Vanilla NeRF + Alpha Invariance recipe (log-space density, high-T init)")
