"""UCF-Crime / XD-Violence I3D features, read in the layouts of the official code (AnasEmad11/CLAP).

Shape legend: V videos, T snippets of a video, C crops, D feature size, N snippets of a split.

Two on-disk layouts (`Config.data_layout`, README "Data" has the folder trees):
- "files": list files with one feature file per line, in the RTFM/CLAP list format
  `<path>[,<from>,<to>]`. The official lists hold the authors' absolute paths
  (`/home/<author>/.../Abuse002_x264_i3d.npy,0,55`), so every entry is resolved against `data_root`:
  the path itself if it exists, else after the `data_path_map` prefix rewrites, else by file name
  anywhere under `data_root`. All entries that cannot be found are reported together.
  UCF-Crime lists one [T, 10, 2048] file per video; XD-Violence one [T, 1024] file per crop,
  `<video>__<k>.npy`, grouped here into [T, 5, 1024].
- "concat": the arrays the official loader reads (`Dataset_Con_all_feedback_XD`): every snippet of
  a split concatenated, [N, C, D], with per-video [from, to) ranges from the list's columns (UCF)
  or `data/XD/nalist_XD.npy` (XD; shipped in the official repository).

Every failure of a user file is a `DataError` / `MissingPathError` naming the file (and line).
"""

from __future__ import annotations

import csv
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import VideoSet
from .runtime import DataError, MissingPathError

UCF_TRAIN_LIST = "list/UCF_Train_ten_crop_i3d_complete_V1.txt"
UCF_TEST_LIST = "list/UCF_Test_ten_crop_i3d_complete_V1.txt"
UCF_GT = ("labels/gt-ucf-RTFM.npy", "labels/gt.npy")
XD_TRAIN_LIST = "list/rgb.list"
XD_TEST_LIST = "list/rgbtest.list"
XD_GT = ("list/gt.npy", "gt.npy", "labels/gt-XD.npy")
SCENES_CSV = "scenes.csv"  # optional: "video_name,scene" rows for the scene split
# "concat" layout: the official loader's file names, relative to data_root
CONCAT = {"ucf": ("data/datasets/concat_UCF_V2.npy", "data/datasets/Concat_test_10.npy"),
          "xd": ("data/datasets/concat_XD.npy", "data/datasets/concat_XD_test.npy")}
XD_RANGES = "data/XD/nalist_XD.npy"  # [V, 2] (from, to) of each training video (official file)
XD_TEST_RANGES = "data/XD/nalist_XD_test.npy"  # optional (ours): test video ranges
MAX_NAMES_IN_MESSAGE = 20


@dataclass(frozen=True)
class ListEntry:
    """One line of a list file: the path as written and its optional [from, to) snippet range."""

    line: int  # 1-based line number
    path: str
    span: tuple[int, int] | None


def expected_tree(name: str, layout: str = "files") -> str:
    """One-line description of the folder a loader expects (used in error messages)."""
    if layout == "concat":
        train, test = CONCAT[name]
        ranges = f"{UCF_TRAIN_LIST} (',from,to' columns)" if name == "ucf" else XD_RANGES
        gt = UCF_GT[0] if name == "ucf" else " or ".join(XD_GT)
        return f"<data_root>/{train}, {test}, {ranges}, {gt}"
    if name == "ucf":
        return (f"<data_root>/{UCF_TRAIN_LIST}, {UCF_TEST_LIST} (one per-video .npy per line, "
                f"[T, 10, 2048]), {UCF_GT[0]} or {UCF_GT[1]}, optional {SCENES_CSV}")
    return (f"<data_root>/{XD_TRAIN_LIST}, {XD_TEST_LIST} (one per-crop .npy per line, "
            f"'<video>__<k>.npy', [T, 1024]), {' or '.join(XD_GT)}, optional {SCENES_CSV}")


def _require(root: Path, rel: str | tuple[str, ...], data_name: str, layout: str) -> Path:
    options = (rel,) if isinstance(rel, str) else rel
    for r in options:
        if (root / r).is_file():
            return root / r
    raise MissingPathError(f"{data_name}: missing {' or '.join(str(root / r) for r in options)}",
                           f"expected: {expected_tree(data_name, layout)}")


# ----------------------------------------------------------------------------- list files


def read_list(path: Path) -> list[ListEntry]:
    """Parse a list file: `<path>` or `<path>,<from>,<to>` per line; blank lines are skipped."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"list file {path} is not UTF-8 text (byte {err.start})",
                        "list files hold one path per line") from None
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) not in (1, 3) or not parts[0] or "\x00" in line:
            raise DataError(f"{path}, line {number}: expected '<path>' or '<path>,<from>,<to>', "
                            f"got {line[:80]!r}", "RTFM/CLAP list format")
        span = None
        if len(parts) == 3:
            try:
                span = (int(parts[1]), int(parts[2]))
            except ValueError:
                raise DataError(f"{path}, line {number}: from/to columns are not integers: "
                                f"{line[:80]!r}", "RTFM/CLAP list format") from None
            if not 0 <= span[0] < span[1]:
                raise DataError(f"{path}, line {number}: snippet range {span} is empty or "
                                "negative", "RTFM/CLAP list format")
        entries.append(ListEntry(number, parts[0], span))
    if not entries:
        raise DataError(f"list file {path} holds no entries", "one feature file per line")
    return entries


def parse_path_map(text: str) -> list[tuple[str, str]]:
    """`"old=new;old2=new2"` -> [(old, new), ...] (data_path_map)."""
    pairs = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise DataError(f"data_path_map item {item!r} is not 'old_prefix=new_prefix'",
                            "README, Data: list files with the authors' paths")
        pairs.append((old, new))
    return pairs


class PathResolver:
    """Finds list entries under data_root: as written, after prefix rewrites, or by file name."""

    def __init__(self, root: Path, path_map: str = "") -> None:
        self.root = root
        self.path_map = parse_path_map(path_map)
        self._by_name: dict[str, list[Path]] | None = None

    def _index(self) -> dict[str, list[Path]]:
        if self._by_name is None:  # one walk of data_root, only when some entry needs it
            self._by_name = {}
            for p in sorted(self.root.rglob("*.npy")):
                self._by_name.setdefault(p.name, []).append(p)
        return self._by_name

    def resolve(self, written: str) -> Path | None:
        for old, new in self.path_map:
            if written.startswith(old):
                written = new + written[len(old):]
                break
        written = written.replace("\\", "/")  # lists written on Windows
        candidate = Path(written)
        candidate = candidate if candidate.is_absolute() else self.root / candidate
        if candidate.is_file():
            return candidate
        found = self._index().get(Path(written).name, [])
        if len(found) > 1:  # same name twice: prefer the folder named as in the list
            found = [p for p in found if p.parent.name == Path(written).parent.name] or found
        if len(found) > 1:
            raise DataError(f"list entry {written!r} matches {len(found)} files under "
                            f"{self.root}: {[str(p) for p in found[:3]]}",
                            "set data_path_map to pick one folder")
        return found[0] if found else None


def resolve_entries(entries: list[ListEntry], resolver: PathResolver, where: Path) -> list[Path]:
    """Path of each entry; a DataError listing every entry that was not found."""
    paths, missing = [], []
    for e in entries:
        p = resolver.resolve(e.path)
        if p is None:
            missing.append(e)
        paths.append(p)
    if missing:
        names = [Path(e.path).name for e in missing]
        report = Path(tempfile.gettempdir()) / f"clap-vad-missing-{where.stem}.txt"
        report.write_text("".join(f"{where}:{e.line}: {e.path}\n" for e in missing))
        shown = ", ".join(names[:MAX_NAMES_IN_MESSAGE])
        more = f" and {len(names) - MAX_NAMES_IN_MESSAGE} more" if len(names) > \
            MAX_NAMES_IN_MESSAGE else ""
        raise MissingPathError(
            f"{len(missing)} of {len(entries)} entries of {where} not found under "
            f"{resolver.root}: {shown}{more}",
            f"all {len(missing)} listed in {report}; files are matched by name anywhere under "
            "data_root, or rewrite the list's prefixes with data_path_map='old=new'")
    return paths


# ----------------------------------------------------------------------------- arrays


def load_array(path: Path, what: str, mmap: bool = True) -> np.ndarray:
    """np.load without pickles; a DataError for anything that is not a numeric array whose
    header matches the file size (a damaged header could otherwise drop snippets silently)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - untrusted file: any failure is malformed input
        raise DataError(f"{what} {path} is not a readable .npy array ({type(err).__name__})",
                        "expected a file written by numpy.save") from None
    if isinstance(arr, np.memmap) and arr.offset + arr.nbytes != path.stat().st_size:
        raise DataError(f"{what} {path}: its header describes {arr.nbytes} bytes of data, the "
                        f"file holds {path.stat().st_size - arr.offset}", "truncated or damaged")
    if not isinstance(arr, np.ndarray):
        if hasattr(arr, "close"):
            arr.close()
        raise DataError(f"{what} {path} is an .npz archive, not an .npy array",
                        "expected a file written by numpy.save")
    if arr.dtype.kind not in "fiub":
        raise DataError(f"{what} {path} holds dtype {arr.dtype}, not numbers",
                        "expected float features")
    return arr if mmap else np.array(arr)


def load_features(path: Path) -> np.ndarray:
    """Per-video features [T, C, D] float32 ([T, D] files get C = 1)."""
    arr = load_array(path, "feature file")
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise DataError(f"feature file {path} has shape {arr.shape}",
                        "expected [T, C, D] or [T, D]")
    return np.asarray(arr, dtype=np.float32)


def load_ground_truth(path: Path, frames: int, truncate: bool) -> np.ndarray:
    """Flat frame-level 0/1 ground truth of the test split, `frames` long.

    With `truncate` (official evaluation: `gt = gt[:len(pred)]`), a longer file is cut, as the
    official XD-Violence evaluation needs; a shorter one is always an error.
    """
    gt = np.asarray(load_array(path, "ground-truth file", mmap=False), dtype=np.float64).reshape(-1)
    if not np.isin(gt, (0.0, 1.0)).all():
        raise DataError(f"ground-truth file {path} holds values other than 0 and 1",
                        "one 0/1 value per frame")
    if gt.shape[0] > frames and truncate:
        print(f"warning: {path} has {gt.shape[0]} frames; using the first {frames} "
              "(data_gt_truncate, as the official evaluation)", file=sys.stderr)
        gt = gt[:frames]
    if gt.shape[0] != frames:
        hint = " or set data_gt_truncate=true" if gt.shape[0] > frames else ""
        raise DataError(f"{path} has {gt.shape[0]} frames but the test split holds {frames} "
                        "(= frames per snippet x test snippets)",
                        f"check the test list and data_frames_per_snippet{hint}")
    return gt


# ----------------------------------------------------------------------------- names, scenes


def ucf_event(name: str) -> str:
    """UCF-Crime class from a file stem: 'Abuse028_x264_i3d' -> 'Abuse', normals -> 'Normal'."""
    if name.lower().startswith("normal"):
        return "Normal"
    m = re.match(r"[A-Za-z]+", name)
    return m.group(0) if m else "Unknown"


def xd_event(name: str) -> str:
    """XD-Violence class from a file stem: '..._label_B2-0-0' -> 'B2', '..._label_A' -> 'Normal'."""
    m = re.search(r"label_([A-Z][0-9]?)", name)
    code = m.group(1) if m else "A"
    return "Normal" if code == "A" else code


def _scene_map(root: Path) -> dict[str, int]:
    path = root / SCENES_CSV
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and not r[0].startswith("#")]
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path} is not a readable CSV ({type(err).__name__})",
                        "rows 'video_stem,scene_name'") from None
    bad = [i for i, r in rows if len(r) < 2]
    if bad:
        raise DataError(f"{path}, line {bad[0]}: expected 'video_stem,scene_name'",
                        "one row per training video")
    labels = sorted({r[1] for _, r in rows})
    return {r[0]: labels.index(r[1]) for _, r in rows}


# ----------------------------------------------------------------------------- layouts


def _check_spans(entries: list[ListEntry], feats: list[np.ndarray], names: list[str],
                 where: Path) -> None:
    """Warn once when per-video files disagree with the list's [from, to) snippet counts."""
    diff = [(n, f.shape[0], e.span[1] - e.span[0]) for e, f, n in zip(entries, feats, names)
            if e.span is not None and f.shape[0] != e.span[1] - e.span[0]]
    if diff:
        print(f"warning: {len(diff)} videos of {where} have a snippet count other than the "
              f"list's from,to columns (first: {diff[0][0]} has {diff[0][1]}, list says "
              f"{diff[0][2]}); the files are used as they are", file=sys.stderr)


def _load_files(list_path: Path, resolver: PathResolver, is_ucf: bool,
                num_crops: int) -> tuple[list[np.ndarray], list[str]]:
    """'files' layout: per-video (UCF) or per-crop (XD) .npy files named in a list."""
    entries = read_list(list_path)
    paths = resolve_entries(entries, resolver, list_path)
    if is_ucf:
        feats = [load_features(p) for p in paths]
        names = [Path(e.path.replace("\\", "/")).stem for e in entries]
        _check_spans(entries, feats, names, list_path)
        return feats, names
    groups: dict[str, list[Path]] = {}
    for e, p in zip(entries, paths):
        groups.setdefault(re.sub(r"__\d+$", "", Path(e.path.replace("\\", "/")).stem), []).append(p)
    feats = []
    for video, files in groups.items():
        if len(files) != num_crops:
            raise DataError(f"{list_path}: video {video!r} has {len(files)} crop files, "
                            f"expected {num_crops} (data_num_crops)", "'<video>__<k>.npy' lines")
        crops = [load_features(p) for p in files]
        if len({c.shape for c in crops}) != 1:
            raise DataError(f"{list_path}: the crop files of video {video!r} differ in shape: "
                            f"{sorted({c.shape for c in crops})}", "'<video>__<k>.npy' lines")
        feats.append(np.concatenate(crops, axis=1))  # [T, C, D]
    return feats, list(groups)


def _split_concat(arr: np.ndarray, spans: list[tuple[int, int]], where: str) -> list[np.ndarray]:
    """Per-video views [T_v, C, D] of a concatenated [N, C, D] array."""
    if arr.ndim != 3:
        raise DataError(f"{where} has shape {arr.shape}", "expected [N, C, D]")
    for i, (a, b) in enumerate(spans):
        if not 0 <= a < b <= arr.shape[0]:
            raise DataError(f"{where}: video {i} spans [{a}, {b}) outside the {arr.shape[0]} "
                            "concatenated snippets", "ranges must index the array")
    return [np.asarray(arr[a:b], dtype=np.float32) for a, b in spans]


def _ranges_file(path: Path) -> list[tuple[int, int]]:
    arr = load_array(path, "video range file", mmap=False)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.dtype.kind not in "iu":
        raise DataError(f"video range file {path} has shape {arr.shape} and dtype {arr.dtype}",
                        "expected [V, 2] integer (from, to) rows")
    return [(int(a), int(b)) for a, b in arr]


def _load_concat(root: Path, name: str, split: str,
                 files: tuple[str, str]) -> tuple[list[np.ndarray], list[str]]:
    """'concat' layout: official concatenated arrays cut into videos by their ranges."""
    arr_path = _require(root, files[0] if split == "train" else files[1], name, "concat")
    arr = load_array(arr_path, "concatenated features")
    if name == "ucf":
        list_path = _require(root, UCF_TRAIN_LIST if split == "train" else UCF_TEST_LIST, name,
                             "concat")
        entries = read_list(list_path)
        if any(e.span is None for e in entries):
            raise DataError(f"{list_path} has lines without ',from,to' columns",
                            "the concat layout needs them to cut the array into videos")
        spans = [e.span for e in entries]
        names = [Path(e.path.replace("\\", "/")).stem for e in entries]
    elif split == "train" or (root / XD_TEST_RANGES).is_file():
        ranges = root / (XD_RANGES if split == "train" else XD_TEST_RANGES)
        spans = _ranges_file(_require(root, str(ranges.relative_to(root)), name, "concat"))
        names = [f"xd_{split}_{i:04d}" for i in range(len(spans))]
    else:  # no official test ranges: one sequence (frame metrics do not depend on boundaries)
        spans, names = [(0, arr.shape[0])], ["xd_test_all"]
    return _split_concat(arr, spans, str(arr_path)), names


def load_real(data_name: str, data_root: str, frames_per_snippet: int, layout: str = "files",
              path_map: str = "", num_crops: int = 10,
              gt_truncate: bool = False) -> tuple[VideoSet, VideoSet]:
    """Load UCF-Crime ("ucf") or XD-Violence ("xd") I3D features (train, test)."""
    root = Path(data_root)
    if not root.is_dir():
        raise MissingPathError(f"data_root {root} is not a folder",
                               f"expected: {expected_tree(data_name, layout)}")
    is_ucf = data_name == "ucf"
    if layout == "concat":
        tr_f, tr_n = _load_concat(root, data_name, "train", CONCAT[data_name])
        te_f, te_n = _load_concat(root, data_name, "test", CONCAT[data_name])
    else:
        resolver = PathResolver(root, path_map)
        train_list = _require(root, UCF_TRAIN_LIST if is_ucf else XD_TRAIN_LIST, data_name, layout)
        test_list = _require(root, UCF_TEST_LIST if is_ucf else XD_TEST_LIST, data_name, layout)
        tr_f, tr_n = _load_files(train_list, resolver, is_ucf, num_crops)
        te_f, te_n = _load_files(test_list, resolver, is_ucf, num_crops)
    gt_path = _require(root, UCF_GT if is_ucf else XD_GT, data_name, layout)
    sizes = [f.shape[0] * frames_per_snippet for f in te_f]
    gt = load_ground_truth(gt_path, sum(sizes), gt_truncate)
    frame_gt = np.split(gt, np.cumsum(sizes)[:-1])
    scenes = _scene_map(root)
    classify = ucf_event if is_ucf else xd_event
    event_names = ["Normal"] + sorted({classify(n) for n in tr_n + te_n} - {"Normal"})
    if layout == "concat" and not is_ucf:
        event_names = ["Normal", "Anomalous"]  # the XD arrays carry no names: test events from gt

    def make(feats, names, gts):
        events = [event_names.index(classify(n)) for n in names]
        if gts is not None and layout == "concat" and not is_ucf:  # no names: events from gt
            events = [int(g.max() > 0) for g in gts]
        return VideoSet(feats, names, np.asarray([scenes.get(n, -1) for n in names]),
                        np.asarray(events), event_names, gts)

    return make(tr_f, tr_n, None), make(te_f, te_n, frame_gt)
