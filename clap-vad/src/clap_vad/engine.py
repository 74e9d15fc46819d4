"""Training and evaluation: collaborative (Flower), local-only and centralised CLAP.

`fit(cfg)` returns a final-metrics dict and writes <run>/config.json, metrics.jsonl, ckpt/last.pt.
A round = `local_epochs` epochs of local SGD on pseudo-labels, for every mode, so the three modes
spend the same number of epochs per participant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from tqdm import trange

from . import flower_app
from .builders import (
    build_model,
    build_participant,
    load_data,
    participant_indices,
    score_metrics,
    test_scores,
)
from .config import Config, config_from_dict, config_to_json
from .model import SnippetScorer
from .runtime import (
    CheckpointError,
    MetricsLogger,
    cuda_max_mem_mib,
    make_run_dir,
    resolve_device,
    resume_checkpoint,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

__all__ = ["build_model", "build_participant", "fit", "load_data", "load_models",
           "participant_indices", "resolve_device", "score_metrics", "test_scores"]

# Settings a resumed run must share with its checkpoint (the rest, e.g. steps, may change).
_RESUME_KEYS = ("mode", "split", "split_event_rule", "num_participants", "seed", "fl_strategy",
                "data_", "syn_", "model_")


# ----------------------------------------------------------------------------- training


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _save(run_dir: Path, cfg: Config, step: int, states: list[dict], extra: dict) -> None:
    save_checkpoint(run_dir / "ckpt" / "last.pt", step=step, config=dataclasses.asdict(cfg),
                    model=states[0], models=states, optimizer={}, **extra)


def config_difference(saved: dict, cfg: Config, keys: tuple[str, ...] = _RESUME_KEYS) -> list[str]:
    """'key: saved -> now' for each setting (by name or prefix) that differs."""
    now = dataclasses.asdict(cfg)
    names = [k for k in now if k in keys or k.startswith(tuple(x for x in keys if x.endswith("_")))]
    return [f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in names if saved.get(k, now[k]) != now[k]]


def _resume(run_dir: Path, cfg: Config) -> dict | None:
    """Newest readable checkpoint of this run folder (last.pt, else last.prev.pt), or None."""
    ckpt = resume_checkpoint(run_dir / "ckpt")
    if ckpt is None:
        return None
    diff = config_difference(ckpt["config"], cfg)
    if diff:
        raise CheckpointError(f"{run_dir / 'ckpt'} holds a run of another config: "
                              f"{'; '.join(diff)}", "use another out_dir or the same settings")
    print(f"resuming {run_dir} at step {ckpt['step']}")
    return ckpt


def _prepare(cfg: Config) -> tuple[Path, MetricsLogger, torch.device]:
    device = resolve_device(cfg.device)  # before the run folder: a bad device leaves nothing
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg))
    return run_dir, logger, device


def _round_eval(cfg, step, models, test, device) -> dict[str, float]:
    """Mean over models (one model, or each participant's in local mode) of AUC / AP."""
    per = [score_metrics(test_scores(m, test, device), test, cfg.data_frames_per_snippet)
           for m in models]
    return {k: float(np.mean([p[k] for p in per])) for k in per[0]}


def _federated_hooks(cfg: Config, run_dir: Path, logger: MetricsLogger, device) -> tuple:
    _, test = load_data(cfg)
    model = build_model(cfg)
    ckpt = _resume(run_dir, cfg)
    start, c_global = 0, None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"], strict=True)
        start, c_global = ckpt["step"], ckpt.get("scaffold_c") or None
    bar = trange(start, cfg.steps, desc=f"rounds ({cfg.fl_strategy})", initial=start,
                 total=cfg.steps)
    history: list[dict] = []

    def on_round(step: int, state: dict, strategy) -> dict:
        info = strategy.round_log.get(step - start, {})
        train_m = {k: info[k] for k in ("clients_ok", "clients_failed", "train_loss") if k in info}
        for reason in info.get("failures", []):
            print(f"round {step}: participant failed and was left out: {reason}")
        logger.log(step, "train", bar, **train_m, **cuda_max_mem_mib(device))
        out = {}
        if step % cfg.eval_every == 0 or step == cfg.steps:
            model.load_state_dict(state, strict=True)
            out = _round_eval(cfg, step, [model.to(device)], test, device)
            logger.log(step, "test", bar, **out)
        if step % cfg.save_every == 0 or step == cfg.steps:
            c = getattr(strategy, "c_global", None)
            _save(run_dir, cfg, step, [state], {"scaffold_c": c or {}})
        history.append({"step": step, **train_m, **out})
        bar.update(1)
        return out

    hooks = flower_app.ServerHooks(initial_state=_state(model), start_round=start,
                                   c_global=c_global, on_round=on_round)
    return hooks, history, bar


def fit_on_grid(grid, cfg: Config) -> dict:
    """Deployment ServerApp body (`flwr run`): same hooks as the simulation, given a live Grid."""
    run_dir, logger, device = _prepare(cfg)
    hooks, history, bar = _federated_hooks(cfg, run_dir, logger, device)
    num = len(participant_indices(cfg, load_data(cfg)[0]))
    flower_app.run_server(grid, cfg, num, hooks)
    bar.close()
    logger.close()
    return {"run_dir": str(run_dir), **(history[-1] if history else {})}


def _fit_collaborative(cfg, run_dir, logger, device) -> dict:
    hooks, history, bar = _federated_hooks(cfg, run_dir, logger, device)
    num = len(participant_indices(cfg, load_data(cfg)[0]))
    flower_app.simulate(cfg, num, hooks)
    bar.close()
    return history[-1] if history else {}


def _fit_local(cfg, run_dir, logger, device) -> dict:
    """Local-only (each participant alone, own statistics) or central (one participant)."""
    _, test = load_data(cfg)
    num = len(participant_indices(cfg, load_data(cfg)[0]))
    parts = [build_participant(cfg, p) for p in range(num)]
    labels = [p.snippet_labels([p.normal_statistics()]) for p in parts]
    models = [build_model(cfg).to(device) for _ in parts]
    for m in models[1:]:  # same initial weights as the collaborative run
        m.load_state_dict(models[0].state_dict())
    start, ckpt = 0, _resume(run_dir, cfg)
    if ckpt is not None:
        for m, s in zip(models, ckpt["models"]):
            m.load_state_dict(s, strict=True)
        labels = [np.asarray(y, dtype=np.float32) for y in ckpt.get("labels", labels)]
        start = ckpt["step"]
    out: dict = {}
    bar = trange(start, cfg.steps, desc=f"rounds ({cfg.mode})")
    for step in range(start + 1, cfg.steps + 1):
        losses = [p.train(m, y, step, device)["loss"] for p, m, y in zip(parts, models, labels)]
        if cfg.pl_refine_every > 0 and step % cfg.pl_refine_every == 0:
            labels = [p.refine(m, y, device) for p, m, y in zip(parts, models, labels)]
        logger.log(step, "train", bar, train_loss=float(np.mean(losses)), **cuda_max_mem_mib(device))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            out = _round_eval(cfg, step, models, test, device)
            logger.log(step, "test", bar, **out)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save(run_dir, cfg, step, [_state(m) for m in models],
                  {"labels": [torch.from_numpy(y) for y in labels]})
        bar.update(1)
    bar.close()
    return out


def fit(cfg: Config) -> dict:
    """Train CLAP in the configured mode; returns the last evaluation plus the run folder."""
    run_dir, logger, device = _prepare(cfg)
    try:
        if cfg.mode == "collaborative":
            out = _fit_collaborative(cfg, run_dir, logger, device)
        else:
            out = _fit_local(cfg, run_dir, logger, device)
    finally:
        logger.close()
    return {"run_dir": str(run_dir), **out}


# ----------------------------------------------------------------------------- evaluation


def load_models(ckpt: dict) -> tuple[Config, list[SnippetScorer]]:
    """Rebuild the scorer(s) from a checkpoint's config; strict loading."""
    try:
        cfg = config_from_dict(ckpt["config"], where="checkpoint config")
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError("checkpoint was not written by this version of clap-vad",
                              f"its config does not parse: {err}") from None
    models = []
    for state in ckpt["models"]:
        model = build_model(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as err:
            shapes = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
            raise CheckpointError("checkpoint weights do not match the scorer of its config",
                                  f"config data_feature_dim={cfg.data_feature_dim}, model_hidden1="
                                  f"{cfg.model_hidden1}, model_hidden2={cfg.model_hidden2}; "
                                  f"fc1.weight in the file: {shapes.get('fc1.weight')}") from err
        models.append(model)
    return cfg, models
