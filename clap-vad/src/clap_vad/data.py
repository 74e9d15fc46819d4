"""Video snippet features: UCF-Crime / XD-Violence loaders and a synthetic surveillance generator.

Shape legend: V videos, T snippets of a video (16 frames each), C crops (10 for UCF-Crime I3D,
5 for XD-Violence), D feature size (2048 UCF-Crime, 1024 XD-Violence), N snippets of a set.

All sets share one in-memory form, `VideoSet`: a list of per-video arrays [T, C, D] plus names,
scene ids and event ids. Event ids (0 = normal) and scene ids are *organisational* metadata used
only by the event/scene partitioners (Sec. 4, the data organisations) and by diagnostics; training
never reads them (the method is unsupervised). Test sets also carry frame-level ground truth.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


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
    """Raise ValueError naming the first video whose shape or ground truth is inconsistent."""
    if len(vs) == 0:
        raise ValueError(f"{where}: no videos")
    for name, f in zip(vs.names, vs.features):
        if f.ndim != 3 or f.shape[1] != num_crops or f.shape[2] != feature_dim:
            raise ValueError(f"{where}: video {name!r} has feature shape {tuple(f.shape)}, expected "
                             f"[T, {num_crops}, {feature_dim}] (data_num_crops, data_feature_dim)")
        if f.shape[0] < 2:
            raise ValueError(f"{where}: video {name!r} has {f.shape[0]} snippet(s); need >= 2")
        if not np.isfinite(f).all():
            raise ValueError(f"{where}: video {name!r} holds non-finite features")
    if vs.frame_gt is not None:
        for name, f, g in zip(vs.names, vs.features, vs.frame_gt):
            if g.shape != (f.shape[0] * frames_per_snippet,):
                raise ValueError(f"{where}: video {name!r} has {f.shape[0]} snippets but "
                                 f"{g.shape[0]} ground-truth frames (expected "
                                 f"{f.shape[0] * frames_per_snippet})")


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
        order = rng.permutation(len(feats))  # interleave scenes like a real list file
        vs = VideoSet([feats[i] for i in order], [names[i] for i in order],
                      np.asarray(sc)[order], np.asarray(ev)[order],
                      ["Normal"] + [f"event{k + 1}" for k in range(spec.num_events)],
                      [gts[i] for i in order])  # train gt: diagnostics only, never trained on
        return vs

    train = build(spec.train_videos_per_scene, spec.anomalous_fraction, test=False)
    test = build(spec.test_videos_per_scene, 0.5, test=True)
    return train, test


# ----------------------------------------------------------------------------- real data

UCF_TRAIN_LIST = "list/UCF_Train_ten_crop_i3d_complete_V1.txt"
UCF_TEST_LIST = "list/UCF_Test_ten_crop_i3d_complete_V1.txt"
UCF_GT = ("labels/gt-ucf-RTFM.npy", "labels/gt.npy")
XD_TRAIN_LIST = "list/rgb.list"
XD_TEST_LIST = "list/rgbtest.list"
XD_GT = ("list/gt.npy", "gt.npy")
SCENES_CSV = "scenes.csv"  # optional: "video_name,scene" rows for the scene split


def _expected_tree(name: str) -> str:
    if name == "ucf":
        return (f"<data_root>/{UCF_TRAIN_LIST}, <data_root>/{UCF_TEST_LIST} (one per-video .npy "
                f"path per line, [T, 10, 2048]), <data_root>/{UCF_GT[0]} or {UCF_GT[1]} "
                f"(flat frame-level 0/1 over the test list), optional <data_root>/{SCENES_CSV}")
    return (f"<data_root>/{XD_TRAIN_LIST}, <data_root>/{XD_TEST_LIST} (one per-crop .npy path "
            f"per line, '<video>__<crop>.npy', [T, 1024]), <data_root>/{XD_GT[0]} or {XD_GT[1]}, "
            f"optional <data_root>/{SCENES_CSV}")


def _require(root: Path, rel: str | tuple[str, ...], data_name: str) -> Path:
    options = (rel,) if isinstance(rel, str) else rel
    for r in options:
        if (root / r).is_file():
            return root / r
    raise FileNotFoundError(f"{data_name}: missing {' or '.join(str(root / r) for r in options)}."
                            f" Expected layout: {_expected_tree(data_name)}")


def _read_list(path: Path, root: Path) -> list[Path]:
    """RTFM/CLAP list file: one .npy path per line (extra ',from,to' columns are ignored)."""
    out = []
    for line in path.read_text().splitlines():
        line = line.strip().split(",")[0]
        if line:
            p = Path(line)
            out.append(p if p.is_absolute() else root / p)
    if not out:
        raise ValueError(f"list file {path} is empty")
    return out


def _load_npy(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"feature file listed but missing: {path}")
    arr = np.load(path, mmap_mode="r")
    if arr.ndim == 2:  # [T, D]: a single crop
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise ValueError(f"{path}: expected [T, C, D] or [T, D] features, got shape {arr.shape}")
    return np.asarray(arr, dtype=np.float32)


def ucf_event(name: str) -> str:
    """UCF-Crime class from a file stem: 'Abuse028_x264_i3d' -> 'Abuse', normals -> 'Normal'."""
    if name.lower().startswith("normal"):
        return "Normal"
    return re.match(r"[A-Za-z]+", name).group(0)


def xd_event(name: str) -> str:
    """XD-Violence class from a file stem: '..._label_B2-0-0' -> 'B2', '..._label_A' -> 'Normal'."""
    m = re.search(r"label_([A-Z][0-9]?)", name)
    code = m.group(1) if m else "A"
    return "Normal" if code == "A" else code


def _group_xd(paths: list[Path]) -> list[tuple[str, list[Path]]]:
    """XD-Violence lists one file per crop ('<video>__<k>.npy'); group crops of a video."""
    groups: dict[str, list[Path]] = {}
    for p in paths:
        stem = re.sub(r"__\d+$", "", p.stem)
        groups.setdefault(stem, []).append(p)
    return list(groups.items())


def _scene_map(root: Path) -> dict[str, int]:
    path = root / SCENES_CSV
    if not path.is_file():
        return {}
    names: dict[str, int] = {}
    with path.open() as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    labels = sorted({r[1] for r in rows})
    for r in rows:
        names[r[0]] = labels.index(r[1])
    return names


def load_real(data_name: str, data_root: str, frames_per_snippet: int) -> tuple[VideoSet, VideoSet]:
    """Load UCF-Crime ("ucf") or XD-Violence ("xd") I3D features in the official list layouts."""
    root = Path(data_root)
    if not root.is_dir():
        raise FileNotFoundError(f"data_root {root} is not a folder. Expected: "
                                f"{_expected_tree(data_name)}")
    is_ucf = data_name == "ucf"
    train_list = _require(root, UCF_TRAIN_LIST if is_ucf else XD_TRAIN_LIST, data_name)
    test_list = _require(root, UCF_TEST_LIST if is_ucf else XD_TEST_LIST, data_name)
    gt_path = _require(root, UCF_GT if is_ucf else XD_GT, data_name)
    scenes = _scene_map(root)
    classify = ucf_event if is_ucf else xd_event

    def load(list_path: Path) -> tuple[list[np.ndarray], list[str]]:
        paths = _read_list(list_path, root)
        groups = [(p.stem, [p]) for p in paths] if is_ucf else _group_xd(paths)
        feats = []
        for _, files in groups:
            crops = [_load_npy(p) for p in files]
            feats.append(np.concatenate(crops, axis=1) if len(crops) > 1 else crops[0])
        return feats, [g[0] for g in groups]

    tr_f, tr_n = load(train_list)
    te_f, te_n = load(test_list)
    event_names = ["Normal"] + sorted({classify(n) for n in tr_n + te_n} - {"Normal"})
    gt = np.load(gt_path).astype(np.float32).reshape(-1)
    sizes = [f.shape[0] * frames_per_snippet for f in te_f]
    if gt.shape[0] != sum(sizes):
        raise ValueError(f"{gt_path} has {gt.shape[0]} frames but the test list holds "
                         f"{sum(sizes)} (= {frames_per_snippet} x test snippets)")
    frame_gt = np.split(gt, np.cumsum(sizes)[:-1])

    def make(feats, names, gts):
        return VideoSet(feats, names, np.asarray([scenes.get(n, -1) for n in names]),
                        np.asarray([event_names.index(classify(n)) for n in names]),
                        event_names, gts)

    return make(tr_f, tr_n, None), make(te_f, te_n, frame_gt)


def stack_snippets(vs: VideoSet) -> np.ndarray:
    """All snippets of a set in list order: [N, C, D] (the official 'concat' array)."""
    return np.concatenate(vs.features, axis=0)
