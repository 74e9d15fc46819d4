"""Training and evaluation: collaborative (Flower), local-only and centralised CLAP.

`fit(cfg)` returns a final-metrics dict and writes <run>/config.json, metrics.jsonl, ckpt/last.pt.
A round = `local_epochs` epochs of local SGD on pseudo-labels, for every mode, so the three modes
spend the same number of epochs per participant.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import trange

from . import flower_app
from .config import Config, config_from_dict, config_to_json
from .data import SyntheticSpec, VideoSet, check_video_set, load_real, make_synthetic
from .metrics import expand_to_frames, frame_ap, frame_auc
from .model import ScorerConfig, SnippetScorer
from .participant import LocalOptim, Participant, score_snippets
from .partition import partition
from .runtime import (
    MetricsLogger,
    load_checkpoint,
    make_run_dir,
    resolve_device,
    save_checkpoint,
    seed_everything,
    set_determinism,
)

__all__ = ["build_model", "build_participant", "fit", "load_models", "resolve_device"]


# ----------------------------------------------------------------------------- building blocks


@functools.lru_cache(maxsize=4)
def _load_data_cached(key: str) -> tuple[VideoSet, VideoSet]:
    cfg = config_from_dict(json.loads(key))
    if cfg.data_name == "synthetic":
        spec = SyntheticSpec(cfg.syn_num_scenes, cfg.syn_num_events, cfg.syn_train_videos_per_scene,
                             cfg.syn_test_videos_per_scene, cfg.syn_anomalous_fraction,
                             cfg.syn_min_snippets, cfg.syn_max_snippets, cfg.data_feature_dim,
                             cfg.data_num_crops, cfg.syn_rank, cfg.syn_event_strength,
                             cfg.syn_scene_confusion, cfg.data_frames_per_snippet)
        train, test = make_synthetic(spec, cfg.seed)
    else:
        train, test = load_real(cfg.data_name, cfg.data_root, cfg.data_frames_per_snippet)
    for vs, where in ((train, "train set"), (test, "test set")):
        check_video_set(vs, cfg.data_feature_dim, cfg.data_num_crops, cfg.data_frames_per_snippet,
                        f"{cfg.data_name} {where}")
    return train, test


def load_data(cfg: Config) -> tuple[VideoSet, VideoSet]:
    """(train, test) video sets of the configured dataset (cached per data settings)."""
    keys = [f.name for f in dataclasses.fields(Config)
            if f.name.startswith(("data_", "syn_")) or f.name == "seed"]
    return _load_data_cached(json.dumps({k: getattr(cfg, k) for k in keys}, sort_keys=True))


def participant_indices(cfg: Config, videos: VideoSet) -> list[np.ndarray]:
    return partition(videos, cfg.split, cfg.num_participants, cfg.seed,
                     central=cfg.mode == "central")


def local_optim(cfg: Config) -> LocalOptim:
    return LocalOptim(cfg.local_epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay,
                      0.0, cfg.pl_gmm_max_iter, cfg.pl_window_ratio, cfg.pl_refine_window_ratio)


def build_participant(cfg: Config, pid: int) -> Participant:
    train, _ = load_data(cfg)
    parts = participant_indices(cfg, train)
    if not 0 <= pid < len(parts):
        raise ValueError(f"partition-id {pid} out of range: the {cfg.split} split has "
                         f"{len(parts)} participants")
    return Participant(train.subset(parts[pid]), local_optim(cfg), cfg.seed, pid)


def build_model(cfg: Config) -> SnippetScorer:
    return SnippetScorer(ScorerConfig(cfg.data_feature_dim, cfg.model_hidden1, cfg.model_hidden2,
                                      cfg.model_dropout, cfg.model_attention))


def test_scores(model: torch.nn.Module, test: VideoSet, device: torch.device) -> list[np.ndarray]:
    """Per-video snippet scores [T_v] on the test set."""
    flat = score_snippets(model, torch.from_numpy(np.concatenate(test.features)), device)
    return np.split(flat, np.cumsum([f.shape[0] for f in test.features])[:-1])


def score_metrics(scores: list[np.ndarray], test: VideoSet, fps: int) -> dict[str, float]:
    """Frame-level AUC (UCF-Crime protocol) and AP (XD-Violence protocol) over the given videos."""
    frames = np.concatenate([expand_to_frames(s, fps) for s in scores])
    gt = np.concatenate(test.frame_gt)
    return {"auc": frame_auc(frames, gt), "ap": frame_ap(frames, gt)}


# ----------------------------------------------------------------------------- training


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _save(run_dir: Path, cfg: Config, step: int, states: list[dict], extra: dict) -> None:
    save_checkpoint(run_dir / "ckpt" / "last.pt", step=step, config=dataclasses.asdict(cfg),
                    model=states[0], models=states, optimizer={}, **extra)


def _resume(run_dir: Path, cfg: Config) -> dict | None:
    path = run_dir / "ckpt" / "last.pt"
    if not path.is_file():
        return None
    ckpt = load_checkpoint(path)
    if ckpt["config"].get("mode") != cfg.mode or ckpt["config"].get("split") != cfg.split:
        raise ValueError(f"{path} is a {ckpt['config'].get('mode')}/{ckpt['config'].get('split')} "
                         f"run; this config is {cfg.mode}/{cfg.split}: use another out_dir")
    return ckpt


def _prepare(cfg: Config) -> tuple[Path, MetricsLogger, torch.device]:
    seed_everything(cfg.seed)
    set_determinism(cfg.deterministic)
    run_dir = make_run_dir(cfg.out_dir, cfg.config_name)
    (run_dir / "config.json").write_text(config_to_json(cfg))
    print(config_to_json(cfg))
    logger = MetricsLogger(run_dir, cfg.wandb, dataclasses.asdict(cfg))
    return run_dir, logger, resolve_device(cfg.device)


def _round_eval(cfg, step, models, test, device) -> dict[str, float]:
    per = [score_metrics(test_scores(m, test, device), test, cfg.data_frames_per_snippet)
           for m in models]
    return {"auc": float(np.mean([p["auc"] for p in per])),
            "ap": float(np.mean([p["ap"] for p in per]))}


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
        logger.log(step, "train", bar, **train_m)
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
        logger.log(step, "train", bar, train_loss=float(np.mean(losses)))
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
    except (KeyError, ValueError) as err:
        raise ValueError(f"checkpoint was not written by clap-vad: {err}") from err
    models = []
    for state in ckpt["models"]:
        model = build_model(cfg)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ValueError(f"checkpoint weights do not match the scorer of its config: {err}") \
                from err
        models.append(model)
    return cfg, models
