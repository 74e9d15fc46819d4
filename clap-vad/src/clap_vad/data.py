"""Video snippet features: the in-memory video set and a synthetic surveillance generator.

The UCF-Crime / XD-Violence readers (official list and concatenated layouts) are in real_data.py.

Shape legend: V videos, T snippets of a video (16 frames each), C crops (10 for UCF-Crime I3D,
5 for XD-Violence), D feature size (2048 UCF-Crime, 1024 XD-Violence), N snippets of a set.

All sets share one in-memory form, `VideoSet`: a list of per-video arrays [T, C, D] plus names,
scene ids and event ids. Event ids (0 = normal) and scene ids are *organisational* metadata used
only by the event/scene partitioners (Sec. 4, the data organisations) and by diagnostics; training
never reads them (the method is unsupervised). Test sets also carry frame-level ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .runtime import DataError


@dataclass
class VideoSet:
    """Per-video snippet features and metadata.

    Attributes:
        features: V arrays [T_v, C, D] float32 (T_v may differ between videos).
        names: V video names (file stems).
        scenes: [V] int scene id, -1 when unknown.
        events: [V] int event class, 0 = normal, k >= 1 = anomalous class k.
        event_names: names of the event ids (index 0 = "Normal").
        frame_gt: test sets only: V arrays [T_v * frames_per_snippet] of 0/1.
    """

    features: list[np.ndarray]
    names: list[str]
    scenes: np.ndarray
    events: np.ndarray
    event_names: list[str] = field(default_factory=lambda: ["Normal"])
    frame_gt: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.features)

    def subset(self, indices: list[int] | np.ndarray) -> VideoSet:
        idx = [int(i) for i in indices]
        return VideoSet(
            features=[self.features[i] for i in idx], names=[self.names[i] for i in idx],
            scenes=self.scenes[idx], events=self.events[idx], event_names=self.event_names,
            frame_gt=None if self.frame_gt is None else [self.frame_gt[i] for i in idx])

    @property
    def num_snippets(self) -> int:
        return sum(f.shape[0] for f in self.features)


def check_video_set(vs: VideoSet, feature_dim: int, num_crops: int, frames_per_snippet: int,
                    where: str) -> None:
    """Raise a DataError naming the first video whose shape or ground truth is inconsistent."""
    if len(vs) == 0:
        raise DataError(f"{where}: no videos", "check the list files")
    for name, f in zip(vs.names, vs.features):
        if f.ndim != 3 or f.shape[1] != num_crops or f.shape[2] != feature_dim:
            raise DataError(f"{where}: video {name!r} has feature shape {tuple(f.shape)}, expected "
                            f"[T, {num_crops}, {feature_dim}]", "data_num_crops, data_feature_dim")
        if f.shape[0] < 2:
            raise DataError(f"{where}: video {name!r} has {f.shape[0]} snippet(s); need >= 2",
                            "the video statistics need two snippets")
        if not np.isfinite(f).all():
            raise DataError(f"{where}: video {name!r} holds non-finite features",
                            "re-extract or drop that video")
    if vs.frame_gt is not None:
        for name, f, g in zip(vs.names, vs.features, vs.frame_gt):
            if g.shape != (f.shape[0] * frames_per_snippet,):
                raise DataError(f"{where}: video {name!r} has {f.shape[0]} snippets but "
                                f"{g.shape[0]} ground-truth frames (expected "
                                f"{f.shape[0] * frames_per_snippet})", "data_frames_per_snippet")


# ----------------------------------------------------------------------------- synthetic


@dataclass(frozen=True)
class SyntheticSpec:
    """Synthetic surveillance features (see README, "Synthetic data")."""

    num_scenes: int = 4
    num_events: int = 3
    train_videos_per_scene: int = 24
    test_videos_per_scene: int = 8
    anomalous_fraction: float = 0.35
    min_snippets: int = 24
    max_snippets: int = 48
    feature_dim: int = 64
    num_crops: int = 2
    rank: int = 4
    event_strength: float = 1.5
    scene_confusion: float = 0.8
    frames_per_snippet: int = 16


CROP_NOISE, LOADING, AR_LOW, VIDEO_GAIN = 0.1, 0.15, 0.95, 0.4


def _unit_nonneg(rng: np.random.Generator, d: int, sparsity: float = 0.25) -> np.ndarray:
    v = np.abs(rng.standard_normal(d)) * (rng.random(d) < sparsity)
    v[rng.integers(d)] += 1.0  # never all-zero
    return v / np.linalg.norm(v)


def _synthetic_video(rng: np.random.Generator, spec: SyntheticSpec, scene: dict, event: int,
                     event_dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One video [T, C, D] and its snippet-level 0/1 ground truth [T]."""
    t_len = int(rng.integers(spec.min_snippets, spec.max_snippets + 1))
    # Scene-specific low-rank AR(1) normal dynamics: x_t = m_s + U_s z_t (+ crop noise).
    z = np.zeros((t_len, spec.rank))
    a = scene["ar"]
    z[0] = rng.standard_normal(spec.rank)
    for t in range(1, t_len):  # slow dynamics: consecutive I3D snippets are strongly correlated
        z[t] = a * z[t - 1] + np.sqrt(1 - a * a) * rng.standard_normal(spec.rank)
    gain = rng.uniform(1 - VIDEO_GAIN, 1 + VIDEO_GAIN)  # per-video camera/exposure gain
    base = gain * (scene["mean"][None] + z @ scene["loading"].T)  # [T, D]
    gt = np.zeros(t_len)
    if event > 0:
        length = int(rng.integers(max(2, t_len // 6), max(3, t_len // 3) + 1))
        start = int(rng.integers(1, t_len - length))
        ramp = np.ones(length)
        ramp[0] = ramp[-1] = 0.5  # events fade in/out over one snippet
        burst = spec.event_strength * (1.0 + 0.3 * rng.random(length)) * ramp
        base[start:start + length] += burst[:, None] * event_dirs[event - 1][None] * np.sqrt(
            spec.feature_dim) * 0.5
        gt[start:start + length] = 1.0
    crops = base[:, None, :] + CROP_NOISE * rng.standard_normal((t_len, spec.num_crops, spec.feature_dim))
    return np.maximum(crops, 0.0).astype(np.float32), gt  # I3D features are post-ReLU (>= 0)


def make_synthetic(spec: SyntheticSpec, seed: int) -> tuple[VideoSet, VideoSet]:
    """Train and test `VideoSet`s with planted anomalous events at known snippets.

    Each scene has its own mean and low-rank temporal process; each event class k adds a
    bursty, non-negative direction. A scene's normal mean leans (by `scene_confusion`) towards
    one event direction, so a detector that never saw that scene's normal videos confuses them
    with that event: this is what makes scene and event organisations hard for local training.
    """
    rng = np.random.default_rng(seed)
    d = spec.feature_dim
    event_dirs = np.stack([_unit_nonneg(rng, d) for _ in range(spec.num_events)])  # [K, D]
    scenes = []
    for s in range(spec.num_scenes):
        lean = event_dirs[s % spec.num_events] * spec.scene_confusion * np.sqrt(d) * 0.5
        mean = 0.6 + 0.4 * np.abs(rng.standard_normal(d)) + lean
        loading = LOADING * rng.standard_normal((d, spec.rank))
        scenes.append({"mean": mean, "loading": loading, "ar": AR_LOW + (1 - AR_LOW) * 0.8 * rng.random()})

    def build(videos_per_scene: int, anomalous_fraction: float, test: bool) -> VideoSet:
        feats, names, sc, ev, gts = [], [], [], [], []
        for s in range(spec.num_scenes):
            n_anom = round(videos_per_scene * anomalous_fraction)
            for j in range(videos_per_scene):
                event = 1 + int(rng.integers(spec.num_events)) if j < n_anom else 0
                f, gt = _synthetic_video(rng, spec, scenes[s], event, event_dirs)
                feats.append(f)
                names.append(f"{'test' if test else 'train'}_s{s}_v{j}_e{event}")
                sc.append(s)
                ev.append(event)
                gts.append(np.repeat(gt, spec.frames_per_snippet))
        # Ordered like the official UCF-Crime lists: anomalous videos class by class, normal videos
        # last; scenes interleaved inside each block. The order matters twice: the official event
        # split assigns by list position, and the official client loader does not shuffle.
        order = rng.permutation(len(feats))
        rank = np.asarray([e if e > 0 else spec.num_events + 1 for e in ev])
        order = order[np.argsort(rank[order], kind="stable")]
        vs = VideoSet([feats[i] for i in order], [names[i] for i in order],
                      np.asarray(sc)[order], np.asarray(ev)[order],
                      ["Normal"] + [f"event{k + 1}" for k in range(spec.num_events)],
                      [gts[i] for i in order])  # train gt: diagnostics only, never trained on
        return vs

    train = build(spec.train_videos_per_scene, spec.anomalous_fraction, test=False)
    test = build(spec.test_videos_per_scene, 0.5, test=True)
    return train, test


def stack_snippets(vs: VideoSet) -> np.ndarray:
    """All snippets of a set in list order: [N, C, D] (the official 'concat' array)."""
    return np.concatenate(vs.features, axis=0)
