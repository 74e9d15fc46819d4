"""Building blocks shared by the engine, the Flower apps and evaluation (no training loop here).

`engine.py` and `flower_app.py` both import this module; neither imports the other's internals
(STYLE §5: imports point one way).
"""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import torch

from .config import Config, config_from_dict
from .data import SyntheticSpec, VideoSet, check_video_set, make_synthetic
from .metrics import expand_to_frames, frame_ap, frame_ap_sklearn, frame_auc
from .model import ScorerConfig, SnippetScorer
from .participant import LocalOptim, Participant, score_snippets
from .partition import partition
from .real_data import load_real
from .runtime import ConfigError


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
        train, test = load_real(cfg.data_name, cfg.data_root, cfg.data_frames_per_snippet,
                                cfg.data_layout, cfg.data_path_map, cfg.data_num_crops,
                                cfg.data_gt_truncate)
    for vs, where in ((train, "train set"), (test, "test set")):
        check_video_set(vs, cfg.data_feature_dim, cfg.data_num_crops, cfg.data_frames_per_snippet,
                        f"{cfg.data_name} {where}")
    return train, test


def load_data(cfg: Config) -> tuple[VideoSet, VideoSet]:
    """(train, test) video sets of the configured dataset (cached per data settings)."""
    keys = [f.name for f in dataclasses.fields(Config)
            if f.name.startswith(("data_", "syn_")) or f.name == "seed"]
    return _load_data_cached(json.dumps({k: getattr(cfg, k) for k in keys}, sort_keys=True))


def participant_indices(cfg: Config, videos: VideoSet, test_set: bool = False) -> list[np.ndarray]:
    """Video indices of each participant. On the test set (per-participant diagnostics only) the
    event split goes by name: the official index-range rule is defined for the training list."""
    rule = "by_name" if test_set else cfg.split_event_rule
    return partition(videos, cfg.split, cfg.num_participants, cfg.seed,
                     central=cfg.mode == "central", event_rule=rule)


def local_optim(cfg: Config) -> LocalOptim:
    return LocalOptim(cfg.local_epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay,
                      0.0, cfg.pl_gmm_max_iter, cfg.pl_window_ratio, cfg.pl_refine_window_ratio,
                      cfg.pl_window_rule == "at_least_one", cfg.train_shuffle)


def build_participant(cfg: Config, pid: int) -> Participant:
    train, _ = load_data(cfg)
    parts = participant_indices(cfg, train)
    if not 0 <= pid < len(parts):
        raise ConfigError(f"partition-id {pid} out of range: the {cfg.split} split has "
                          f"{len(parts)} participants", "start one SuperNode per participant")
    return Participant(train.subset(parts[pid]), local_optim(cfg), cfg.seed, pid)


def build_model(cfg: Config) -> SnippetScorer:
    return SnippetScorer(ScorerConfig(cfg.data_feature_dim, cfg.model_hidden1, cfg.model_hidden2,
                                      cfg.model_dropout, cfg.model_attention,
                                      cfg.model_xavier_init))


def test_scores(model: torch.nn.Module, test: VideoSet, device: torch.device) -> list[np.ndarray]:
    """Per-video snippet scores [T_v] on the test set."""
    flat = score_snippets(model, torch.from_numpy(np.concatenate(test.features)), device)
    return np.split(flat, np.cumsum([f.shape[0] for f in test.features])[:-1])


def score_metrics(scores: list[np.ndarray], test: VideoSet, fps: int) -> dict[str, float]:
    """Frame-level AUC (UCF-Crime protocol), official AP (auc(recall, precision)) and sklearn AP."""
    frames = np.concatenate([expand_to_frames(s, fps) for s in scores])
    gt = np.concatenate(test.frame_gt)
    return {"auc": frame_auc(frames, gt), "ap": frame_ap(frames, gt),
            "ap_sklearn": frame_ap_sklearn(frames, gt)}
