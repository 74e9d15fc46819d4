"""Build the models and the dataset from a Config (SMPL and meshes reloaded from their paths)."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import torch

from .config import Config
from .data import HumanImageFolder, SyntheticMannequins
from .model import GSMConfig, GSMGenerator, HumanDiscriminator, load_uv_mask
from .runtime import ConfigError, MissingPathError, UserError
from .template import find_asset, load_body_template, load_shell_base, read_part_vertices


def gsm_config(cfg: Config) -> GSMConfig:
    names = {f.name for f in dataclasses.fields(GSMConfig)}
    return GSMConfig(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def build_models(cfg: Config, device: torch.device):
    """G, G_ema, D rebuilt from a Config (SMPL and the meshes are reloaded from their paths)."""
    names = (cfg.base_mesh, cfg.shrunk_mesh, cfg.smpl_shrunk_mesh, cfg.uv_mask, cfg.part_vertices)
    if not cfg.smpl_path and any(n and not Path(n).is_absolute() for n in names):
        raise ConfigError("asset names relative to smpl_path but smpl_path is empty",
                          "set --smpl_path to the assets folder, or clear base_mesh, "
                          "shrunk_mesh, smpl_shrunk_mesh, uv_mask, part_vertices")
    template = load_body_template(cfg.smpl_path, need_uv=not cfg.base_mesh,
                                  smpl_shrunk_mesh=cfg.smpl_shrunk_mesh)
    base = load_shell_base(template, cfg.smpl_path, cfg.base_mesh, cfg.shrunk_mesh)
    head_ids = (read_part_vertices(find_asset(cfg.smpl_path, cfg.part_vertices))
                if cfg.part_vertices else None)
    if head_ids is not None and int(head_ids.max()) >= template.v_template.shape[0]:
        raise UserError(f"{cfg.part_vertices}: vertex id {int(head_ids.max())} past SMPL's "
                        f"{template.v_template.shape[0]} vertices")
    uv_mask = (load_uv_mask(find_asset(cfg.smpl_path, cfg.uv_mask), cfg.tex_resolution)
               if cfg.uv_mask else None)
    gen = GSMGenerator(gsm_config(cfg), template, base, head_ids, uv_mask).to(device)
    gen_ema = copy.deepcopy(gen).eval().requires_grad_(False)
    disc = HumanDiscriminator(cfg.data_resolution, cfg.d_channel_base, cfg.d_channel_max,
                              cfg.mbstd_group, cfg.face_resolution if cfg.use_face_disc else 0)
    return template, gen, gen_ema, disc.to(device)


def check_sources(cfg: Config) -> None:
    """Fail fast (before a run folder is made) on a missing data or assets folder."""
    if cfg.data_name != "synthetic":
        if not cfg.data_root:
            raise ConfigError(f"data_name={cfg.data_name!r} needs data_root",
                              "--data_root /path/to/shhq (dataset.mat or dataset.json + images/)")
        if not Path(cfg.data_root).is_dir():
            raise MissingPathError(f"data_root {cfg.data_root} is not a folder",
                                   "a folder with dataset.mat or dataset.json and images/")
    elif cfg.data_root:
        warnings.warn(f"data_root={cfg.data_root!r} is ignored with data_name='synthetic'",
                      stacklevel=2)
    if cfg.smpl_path and not Path(cfg.smpl_path).is_dir():
        raise MissingPathError(f"smpl_path {cfg.smpl_path} is not a folder",
                               "the official assets/ folder with smpl/SMPL_NEUTRAL.npz added")


def build_dataset(cfg: Config, template):
    if cfg.data_name == "synthetic":
        return SyntheticMannequins(template, cfg.data_num_synthetic, cfg.data_resolution, cfg.seed,
                                   convention=cfg.data_label_convention)
    if not cfg.data_root:
        raise ConfigError(f"data_name={cfg.data_name!r} needs data_root",
                          "--data_root /path/to/shhq (dataset.mat or dataset.json + images/)")
    return HumanImageFolder(cfg.data_root, cfg.data_resolution, cfg.background, cfg.data_divide_fx)
