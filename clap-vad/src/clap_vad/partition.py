"""Participant partitioners: the paper's three data organisations (Sec. 4) and the central case.

Each partitioner maps V videos to P participants and returns a list of P index arrays. Rules follow
the official split generators (data/generate_data_AD_US*.py of AnasEmad11/CLAP):
- random: shuffle all videos, P contiguous chunks of V // P, the remainder dealt round-robin;
- event: one participant per anomalous event class (all of its videos); the normal videos are cut
  into P contiguous equal chunks in list order, the last chunk taking the remainder;
- scene: one participant per scene (scene labels come with the data, e.g. scenes.csv);
- central: one participant holding every video (the centralised baseline).
"""

from __future__ import annotations

import numpy as np

from .data import VideoSet


def random_split(num_videos: int, num_participants: int, seed: int) -> list[np.ndarray]:
    """Random organisation: near-equal random chunks."""
    if num_participants < 1:
        raise ValueError(f"num_participants must be >= 1, got {num_participants}")
    order = np.random.default_rng(seed).permutation(num_videos)
    chunk = num_videos // num_participants
    parts = [list(order[i * chunk:(i + 1) * chunk]) for i in range(num_participants)]
    for j, v in enumerate(order[num_participants * chunk:]):
        parts[j % num_participants].append(v)
    return [np.sort(np.asarray(p, dtype=int)) for p in parts]


def event_split(events: np.ndarray) -> list[np.ndarray]:
    """Event-class organisation: participant k holds event class k+1 plus a chunk of normals."""
    classes = sorted(int(e) for e in np.unique(events) if e > 0)
    if not classes:
        raise ValueError("event split needs anomalous event labels; none found")
    normals = np.flatnonzero(events == 0)
    p = len(classes)
    chunk = len(normals) // p
    parts = []
    for i, k in enumerate(classes):
        stop = len(normals) if i == p - 1 else (i + 1) * chunk
        parts.append(np.sort(np.concatenate([np.flatnonzero(events == k), normals[i * chunk:stop]])))
    return parts


def scene_split(scenes: np.ndarray) -> list[np.ndarray]:
    """Scene organisation: one participant per scene id."""
    if (scenes < 0).any():
        raise ValueError(f"scene split needs a scene id for every video; {(scenes < 0).sum()} "
                         "have none (give <data_root>/scenes.csv with 'video_name,scene' rows)")
    return [np.flatnonzero(scenes == s) for s in sorted(np.unique(scenes))]


def partition(vs: VideoSet, split: str, num_participants: int, seed: int,
              central: bool = False) -> list[np.ndarray]:
    """Video indices of each participant; raises ValueError if a participant gets no video."""
    if central:
        parts = [np.arange(len(vs))]
    elif split == "random":
        parts = random_split(len(vs), num_participants, seed)
    elif split == "event":
        parts = event_split(vs.events)
    elif split == "scene":
        parts = scene_split(vs.scenes)
    else:
        raise ValueError(f"unknown split {split!r}; expected random | event | scene")
    empty = [i for i, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise ValueError(f"participant(s) {empty} of the {split} split have no videos "
                         f"({len(vs)} videos for {len(parts)} participants)")
    return parts
