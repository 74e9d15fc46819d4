"""Participant partitioners: the paper's three data organisations (Sec. 4) and the central case.

Each partitioner maps V videos to P participants and returns a list of P index arrays. Rules follow
the official split generators (data/generate_data_AD_US*.py of AnasEmad11/CLAP):
- random: shuffle all videos, P contiguous chunks of V // P, the remainder dealt round-robin;
- event: one participant per anomalous event class; the normal videos are cut into P contiguous
  equal chunks in list order, the last chunk taking the remainder. Two rules for the classes:
  "official" reproduces the official generator's hard-coded index ranges, which assume one
  anomalous video more than the list holds (810 vs 809 on UCF-Crime), so every block after the
  first is shifted by one position (see `event_split_official`); "by_name" assigns each video to
  the participant of its own class (the corrected split);
- scene: one participant per scene (scene labels come with the data, e.g. scenes.csv);
- central: one participant holding every video (the centralised baseline).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from .data import VideoSet
from .runtime import ConfigError, DataError


def random_split(num_videos: int, num_participants: int, seed: int) -> list[np.ndarray]:
    """Random organisation: near-equal random chunks."""
    if num_participants < 1:
        raise ConfigError(f"num_participants must be >= 1, got {num_participants}")
    order = np.random.default_rng(seed).permutation(num_videos)
    chunk = num_videos // num_participants
    parts = [list(order[i * chunk:(i + 1) * chunk]) for i in range(num_participants)]
    for j, v in enumerate(order[num_participants * chunk:]):
        parts[j % num_participants].append(v)
    return [np.sort(np.asarray(p, dtype=int)) for p in parts]


def _normal_chunks(normals: np.ndarray, p: int) -> list[np.ndarray]:
    """P contiguous chunks of floor(len / P) in list order; the last takes the remainder."""
    chunk = len(normals) // p
    return [normals[i * chunk:len(normals) if i == p - 1 else (i + 1) * chunk] for i in range(p)]


def event_split_official(events: np.ndarray) -> list[np.ndarray]:
    """Event organisation as the official generator builds it (index ranges over the list).

    The official generator (data/generate_data_AD_US _class_based.py) hard-codes one index range
    per UCF-Crime class, [0, 47], [48, 92], ..., [765, 809], then cuts positions 810..1607 into 13
    normal chunks. The ranges follow the class sizes of the list except that the first class is
    counted one video larger: they cover 810 anomalous positions while the shipped list holds 809.
    So, by position, participant 1 gets its class plus the first video of class 2 (Arrest002 in
    Abuse), every later class loses its first video to the previous participant, the last class
    gets the first normal video (Normal_Videos001 in Vandalism), and the normal chunks start one
    position later. This function applies that rule to any list ordered like the official one:
    block sizes n_1 + 1, n_2, ..., n_K over the first positions, the rest cut into K chunks.

    Args:
        events: [V] event ids in list order (0 = normal).
    Returns:
        K index arrays (K anomalous classes), in order of first appearance in the list.
    """
    events = np.asarray(events)
    anomalous = np.flatnonzero(events > 0)
    if len(anomalous) == 0:
        raise DataError("event split needs anomalous event classes; none found",
                        "video names carry the class, e.g. Abuse002_x264")
    blocks = [int(events[0])] + [int(e) for a, e in pairwise(events) if e != a]
    order = [b for b in blocks if b > 0]
    contiguous = len(order) == len(set(order)) and (events[len(anomalous):] == 0).all()
    if not contiguous:
        raise DataError("split_event_rule='official' assigns videos by list position and needs a "
                        "list ordered like the official one (each class in one block, normal "
                        "videos last); this list is not", "use --split_event_rule by_name")
    sizes = [int((events == k).sum()) for k in order]
    sizes[0] += 1  # the official ranges count the first class one video too large
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    end = min(int(bounds[-1]), len(events))
    parts = [np.arange(bounds[i], min(bounds[i + 1], end)) for i in range(len(order))]
    rest = _normal_chunks(np.arange(end, len(events)), len(order))
    return [np.concatenate([a, b]).astype(int) for a, b in zip(parts, rest)]


def event_split(events: np.ndarray) -> list[np.ndarray]:
    """Event-class organisation by name: participant k holds class k+1 plus a chunk of normals."""
    classes = sorted(int(e) for e in np.unique(events) if e > 0)
    if not classes:
        raise DataError("event split needs anomalous event classes; none found",
                        "video names carry the class, e.g. Abuse002_x264")
    chunks = _normal_chunks(np.flatnonzero(events == 0), len(classes))
    return [np.sort(np.concatenate([np.flatnonzero(events == k), c])) for k, c in
            zip(classes, chunks)]


def scene_split(scenes: np.ndarray) -> list[np.ndarray]:
    """Scene organisation: one participant per scene id."""
    if (scenes < 0).any():
        raise DataError(f"scene split needs a scene id for every video; {(scenes < 0).sum()} "
                        "have none", "give <data_root>/scenes.csv with 'video_stem,scene' rows")
    return [np.flatnonzero(scenes == s) for s in sorted(np.unique(scenes))]


def partition(vs: VideoSet, split: str, num_participants: int, seed: int,
              central: bool = False, event_rule: str = "official") -> list[np.ndarray]:
    """Video indices of each participant; a UserError if a participant gets no video."""
    if central:
        parts = [np.arange(len(vs))]
    elif split == "random":
        parts = random_split(len(vs), num_participants, seed)
    elif split == "event":
        parts = event_split_official(vs.events) if event_rule == "official" else \
            event_split(vs.events)
    elif split == "scene":
        parts = scene_split(vs.scenes)
    else:
        raise ConfigError(f"unknown split {split!r}", "expected random | event | scene")
    empty = [i for i, p in enumerate(parts) if len(p) == 0]
    if empty:
        raise ConfigError(f"participant(s) {empty} of the {split} split have no videos "
                          f"({len(vs)} videos for {len(parts)} participants)",
                          "use fewer participants or another split")
    return parts
