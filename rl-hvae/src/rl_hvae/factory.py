"""Build the network a Config describes (released or intended architecture)."""

from __future__ import annotations

from .config import Config
from .data import ImageSet
from .model import HierarchicalVAE, HVAEArch
from .released import ReleasedHVAE
from .runtime import ConfigError

# Fields that define the network; a checkpoint must agree on all of them to be loaded.
ARCH_FIELDS = ("data_name", "data_binarize", "arch_skips", "model_channels",
               "model_blocks_per_stage", "model_stage_strides", "model_stage_kernels",
               "model_conv_latent_channels", "model_dense_latents")


def build_model(cfg: Config, data: ImageSet) -> HierarchicalVAE | ReleasedHVAE:
    """The HVAE for `cfg` and the image shape of `data`; `cfg.arch_skips` picks the network."""
    _, c, h, w = data.images.shape
    try:
        arch = HVAEArch(in_channels=c, image_size=h, channels=cfg.model_channels,
                        blocks_per_stage=cfg.model_blocks_per_stage,
                        stage_strides=cfg.model_stage_strides,
                        stage_kernels=cfg.model_stage_kernels,
                        conv_latent_channels=cfg.model_conv_latent_channels,
                        dense_latents=cfg.model_dense_latents,
                        likelihood="bernoulli" if cfg.data_binarize else "discretized_logistic")
    except ValueError as err:
        raise ConfigError(f"{err}", f"images of {cfg.data_name} are {h}x{w}") from None
    return ReleasedHVAE(arch) if cfg.arch_skips == "released" else HierarchicalVAE(arch)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
