"""Training state in checkpoints: weights, optimisers and every RNG stream, per torchrun rank.

The CPU generator and, on a GPU, the training device's CUDA generator (latents, perturbed
barycentrics, R1 noise) are saved per rank and restored on resume, so a resumed run continues
the uninterrupted one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from .config import Config
from .distributed import Dist
from .runtime import SUBPROJECT, CheckpointError, save_checkpoint

ARCH = SUBPROJECT


def capture_rng(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's RNG states: CPU, and the training device's CUDA generator (latents,
    perturbed barycentrics and R1 noise come from it on a GPU)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(ckpt: dict, sync: Dist, fallback_seed: int) -> None:
    """This rank's CPU (and CUDA) RNG states from the checkpoint; if the number of processes
    changed since it was written, a fresh per-rank seed instead (the run continues, not
    bit-identically)."""
    states = ckpt.get("rng_ranks") or [{"cpu": ckpt["rng_cpu"]}]
    if len(states) != sync.world:
        print(f"resuming a {len(states)}-process run with {sync.world}: latents re-seeded")
        torch.manual_seed(fallback_seed + sync.rank)
        return
    state = states[sync.rank]
    torch.set_rng_state(state["cpu"])
    if sync.device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], sync.device)


def _save(path: Path, cfg, step, gen, gen_ema, disc, opt_g, opt_d, loader_gen, sync: Dist) -> None:
    """Rank 0 writes the checkpoint (after checking that the replicas agree); all ranks wait."""
    sync.check_consistent(gen, "G")
    sync.check_consistent(disc, "D")
    rng = sync.gather(capture_rng(sync.device))
    if sync.main:
        save_checkpoint(path, arch=ARCH, step=step, config=dataclasses.asdict(cfg),
                        model=gen.state_dict(), ema=gen_ema.state_dict(), disc=disc.state_dict(),
                        optimizer={"g": opt_g.state_dict(), "d": opt_d.state_dict()},
                        rng_cpu=rng[0]["cpu"], rng_ranks=rng, rng_loader=loader_gen.get_state(),
                        world_size=sync.world)
    sync.barrier()


# config keys that change tensor shapes: a checkpoint of another value cannot be loaded
_SHAPE_KEYS = ("num_shells", "num_gaussians", "z_dim", "w_dim", "map_depth", "tex_resolution",
               "tex_channels", "channel_base", "channel_max", "decoder_hidden", "d_channel_base",
               "d_channel_max", "data_resolution", "use_face_disc", "face_resolution")


def _check_same_config(ckpt: dict, cfg: Config, path) -> None:
    old = ckpt.get("config", {})
    diff = [f"{k}: {old.get(k)!r} -> {getattr(cfg, k)!r}" for k in _SHAPE_KEYS
            if k in old and old[k] != getattr(cfg, k)]
    if diff:
        raise CheckpointError(f"{path} was written with another model config ({'; '.join(diff)})",
                              "resume with the run's own config.json, or use a new --out_dir")


def _load_state(ckpt: dict, gen, gen_ema, disc, opt_g=None, opt_d=None) -> None:
    try:
        gen.load_state_dict(ckpt["model"], strict=True)
        gen_ema.load_state_dict(ckpt["ema"], strict=True)
        disc.load_state_dict(ckpt["disc"], strict=True)
        if opt_g is not None:
            opt_g.load_state_dict(ckpt["optimizer"]["g"])
            opt_d.load_state_dict(ckpt["optimizer"]["d"])
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise CheckpointError("checkpoint does not match the configured model",
                              f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from err
