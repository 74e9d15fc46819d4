"""Data: body-face pair records from CrowdHuman / CityPersons (three on-disk layouts) and a
synthetic crowd.

Every source yields `PairRecord`s (pixel boxes, xyxy) that `PairDataset` turns into model inputs:
  image  [3, H, W] ImageNet-normalised, resized so the short side is `image_size` (long <= max_size);
  target "boxes" [T, 8] body cxcywh + face cxcywh in [0, 1]; "labels" [T] (0 = body with a visible
         face, 1 = body without a visible face: its face slot holds the head box, or an
         approximated head when no head box is annotated); ignored persons are dropped, as in the
         official preprocessed annotations; boxes outside the image are clipped and counted.

Layouts (README "Paper settings and datasets"):
  CrowdHuman .odgt: one JSON object per line, {"ID", "gtboxes": [{"tag", "fbox", "hbox", "vbox",
    "extra": {"ignore"}, "head_attr": {"ignore", "occ", "unsure"}}]} with [x, y, w, h] boxes.
    An optional per-box "f_bbox" [x, y, w, h] (BFJDet face) is used when present.
  BFJDet COCO-style JSON (CrowdHuman instances_*_full_bhf_new.json, CityPersons
    instances_*_bhfmatch_new.json): "images" (id, file_name, width, height) and person
    "annotations" (image_id, bbox, f_bbox, h_bbox, vis_ratio, ignore); an invisible face or head
    is [1, 1, 1, 1] (w = h = 1; BFJDet tests w > 1).
  Official PairDETR JSON (mts-ai/pairdetr annotations/*_df_body_face_*.json, read by its
    dataset.py): {image_name: [[cls, cx, cy, w, h, cx, cy, w, h], ...]}, boxes normalised to
    [0, 1], the FIRST box the body and the second the face (cls 0) or head (cls 1); ignored
    persons already removed, no visibility. Image: <image dir>/<image_name>.jpg (as dataset.py),
    or .png, or CityPersons' leftImg8bit/<split>/<city>/<image_name>.png.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .boxes import xywh_to_xyxy
from .runtime import ConfigError, DataError, MissingPathError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LABEL_PAIR, LABEL_BODY_ONLY = 0, 1
LAYOUTS = ("BFJDet COCO-style JSON ({\"images\": [...], \"annotations\": [...]}) or the official "
           "PairDETR JSON ({image_name: [[cls, cx, cy, w, h, cx, cy, w, h], ...]}, normalised)")


@dataclass
class PairRecord:
    """One image and its persons (pixel xyxy boxes; zeros where a box does not exist).

    `normalized` records (official layout) hold boxes in [0, 1] until `to_pixels` is called with
    the decoded image size (PairDataset does it).
    """

    image_id: str
    width: int
    height: int
    bodies: np.ndarray  # [N, 4] full-body boxes
    faces: np.ndarray  # [N, 4] face boxes (rows of zeros if invisible)
    heads: np.ndarray  # [N, 4] head boxes (zeros if not annotated)
    has_face: np.ndarray  # [N] bool, a visible, non-ignored face
    vis_ratio: np.ndarray  # [N] visible fraction of the body (1 if unknown)
    ignore: np.ndarray  # [N] bool, ignore region / person flagged ignore
    path: str = ""  # image file (real data)
    image: np.ndarray | None = field(default=None, repr=False)  # [H, W, 3] uint8 (synthetic)
    normalized: bool = False
    # annotated heights as the evaluation toolkits read them (BFJDet "height" / bbox h, f_bbox h):
    # the subset ranges compare these numbers, not y2 - y1 of the converted boxes (which differs in
    # the last bit and flips persons at exactly 50 / 20 px). None = take them from the boxes.
    heights: np.ndarray | None = field(default=None, repr=False)  # [N]
    face_heights: np.ndarray | None = field(default=None, repr=False)  # [N]

    def to_pixels(self, width: int, height: int) -> None:
        """Scale normalised boxes to a `width` x `height` image (no-op for pixel records)."""
        if self.normalized:
            scale = np.array([width, height, width, height], float)
            self.bodies, self.faces, self.heads = (self.bodies * scale, self.faces * scale,
                                                   self.heads * scale)
            self.normalized = False
        self.width, self.height = width, height


def _valid(boxes: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    return ((boxes[:, 2] - boxes[:, 0]) > min_size) & ((boxes[:, 3] - boxes[:, 1]) > min_size)


def clip_boxes(boxes: np.ndarray, width: float, height: float) -> tuple[np.ndarray, int]:
    """Clip [N, 4] xyxy boxes to the image; returns (clipped, number of boxes that changed)."""
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    changed = int((np.abs(clipped - boxes).sum(1) > 1e-6).sum())
    return clipped, changed


def approximate_head(bodies: np.ndarray) -> np.ndarray:
    """Head box guessed from a body box (top-centre; sizes from CityPersons head statistics)."""
    w, h = bodies[:, 2] - bodies[:, 0], bodies[:, 3] - bodies[:, 1]
    cx, cy = (bodies[:, 0] + bodies[:, 2]) / 2, bodies[:, 1] + 0.09 * h
    return np.stack([cx - 0.15 * w, cy - 0.07 * h, cx + 0.15 * w, cy + 0.07 * h], 1)


# ------------------------------------------------------------------ field validation


def _number(value, name: str) -> float:
    """A finite int/float (not bool), else ValueError naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} is {type(value).__name__}, not a number")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} is not finite")
    return value


def _box4(value, name: str) -> list[float]:
    """Four finite numbers [x, y, w, h], else ValueError naming the field."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise TypeError(f"{name} is not a list of 4 numbers")
    return [_number(v, name) for v in value]


def _flag(container, key: str, name: str) -> bool:
    """A 0/1/bool flag inside an optional dict; missing = False."""
    if container is None:
        return False
    if not isinstance(container, dict):
        raise TypeError(f"{name} is not an object")
    return bool(_number(container.get(key, 0), f"{name}.{key}"))


# ------------------------------------------------------------------ CrowdHuman .odgt


def _person_from_odgt(box) -> tuple:
    if not isinstance(box, dict):
        raise TypeError("a gtboxes entry is not an object")
    tag = box.get("tag")
    if not isinstance(tag, str):
        raise TypeError("gtboxes entry without a string 'tag'")
    fbox = np.asarray(_box4(box["fbox"], "fbox"), float)
    if tag != "person":  # "mask" = ignore region
        return fbox, np.zeros(4), np.zeros(4), 1.0, True, False, 0.0
    hbox = np.asarray(_box4(box.get("hbox", [0, 0, 0, 0]), "hbox"), float)
    vbox = np.asarray(_box4(box.get("vbox", box["fbox"]), "vbox"), float)
    face = np.asarray(_box4(box.get("f_bbox", [0, 0, 0, 0]), "f_bbox"), float)
    ignore = _flag(box.get("extra"), "ignore", "extra")
    head_ignore = _flag(box.get("head_attr"), "ignore", "head_attr")
    vis = float(np.clip((vbox[2] * vbox[3]) / max(fbox[2] * fbox[3], 1e-6), 0, 1))
    face_ok = face[2] > 1 and face[3] > 1 and not head_ignore
    return fbox, (hbox if not head_ignore else np.zeros(4)), (face if face_ok else np.zeros(4)), \
        vis, ignore, face_ok, face[3]


def _odgt_record(item, image_dir: Path) -> PairRecord:
    if not isinstance(item, dict):
        raise TypeError("line is not a JSON object")
    image_id = item["ID"]
    if not isinstance(image_id, (str, int)) or isinstance(image_id, bool):
        raise TypeError("'ID' is not a string")
    if not isinstance(item["gtboxes"], list):
        raise TypeError("'gtboxes' is not a list")
    persons = [_person_from_odgt(b) for b in item["gtboxes"]]
    n = len(persons)
    col = list(zip(*persons)) if n else [[]] * 7
    return PairRecord(
        image_id=str(image_id), width=0, height=0,
        bodies=xywh_to_xyxy(np.array(col[0]).reshape(n, 4)),
        heads=np.where(np.array(col[1]).reshape(n, 4)[:, 2:3] > 1,
                       xywh_to_xyxy(np.array(col[1]).reshape(n, 4)), 0.0),
        faces=np.where(np.array(col[2]).reshape(n, 4)[:, 2:3] > 1,
                       xywh_to_xyxy(np.array(col[2]).reshape(n, 4)), 0.0),
        vis_ratio=np.array(col[3], float).reshape(n),
        ignore=np.array(col[4], bool).reshape(n),
        has_face=np.array(col[5], bool).reshape(n),
        path=str(Path(image_dir) / f"{image_id}.jpg"),
        heights=np.array([p[3] for p in col[0]], float).reshape(n),
        face_heights=np.array(col[6], float).reshape(n),
    )


def load_crowdhuman_odgt(path: str | Path, image_dir: str | Path,
                         skip_bad_lines: bool = True) -> tuple[list[PairRecord], dict]:
    """Read a CrowdHuman .odgt file. Image sizes are read lazily (0 until the image is opened).

    A malformed line (bad JSON, missing keys, a box that is not 4 finite numbers) raises a
    DataError naming the line number, or is skipped with a warning when `skip_bad_lines`;
    every non-empty line ends up either as a record or in stats["bad_lines"].
    """
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"CrowdHuman annotation not found: {path}",
                               "expected <data_root>/annotation_train.odgt, annotation_val.odgt, "
                               "Images/")
    records, stats = [], {"bad_lines": [], "ignored_boxes": 0}
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                rec = _odgt_record(json.loads(raw.decode("utf-8")), Path(image_dir))
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError,
                    IndexError, RecursionError) as err:
                msg = f"{path}:{line_no}: malformed .odgt line ({type(err).__name__}: {err})"
                if not skip_bad_lines:
                    raise DataError(msg[:300], "set data_skip_bad_lines = true to skip such "
                                               "lines") from err
                warnings.warn(msg[:300] + "; skipped", stacklevel=2)
                stats["bad_lines"].append(line_no)
                continue
            stats["ignored_boxes"] += int(rec.ignore.sum())
            records.append(rec)
    return records, stats


# ------------------------------------------------------------------ BFJDet COCO-style JSON


def _resolve_image(image_dir: Path, file_name: str) -> str:
    """An existing image for `file_name`: direct, or CityPersons' <city>/ sub-folder; with no
    extension (official layout keys) also <name>.jpg (as the official dataset.py) or .png."""
    stem = Path(file_name)
    names = [file_name] if stem.suffix in {".jpg", ".png", ".jpeg"} else \
        [file_name.split(".")[0] + ".jpg", file_name.split(".")[0] + ".png"]
    candidates = []
    for name in names:
        base = Path(name).name  # CityPersons: <city>_..._leftImg8bit.png
        candidates += [image_dir / name, image_dir / base.split("_")[0] / base]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    # none exists: name the expected place (CityPersons' city sub-folder) in the decode warning
    return str(candidates[1] if "leftImg8bit" in file_name else candidates[0])


def _read_json(path: Path):
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise DataError(f"{path} is not valid JSON ({type(err).__name__}: {str(err)[:80]})",
                        f"expected {LAYOUTS}") from err


def _bfjdet_records(data: dict, path: Path, image_dir: Path) -> tuple[list[PairRecord], dict]:
    images, anns = data["images"], data["annotations"]
    if not isinstance(images, list) or not isinstance(anns, list):
        raise DataError(f"{path}: 'images' and 'annotations' must be lists", f"expected {LAYOUTS}")
    per_image: dict = {}
    for i, img in enumerate(images):
        try:
            if not isinstance(img, dict) or not isinstance(img["file_name"], str):
                raise TypeError("not an object with a string file_name")
            key = img["id"]
            hash(key)
            size = (_number(img["width"], "width"), _number(img["height"], "height"))
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: images[{i}] is malformed ({type(err).__name__}: "
                            f"{str(err)[:80]})", "needs id, file_name, width, height") from err
        if key in per_image:
            raise DataError(f"{path}: images[{i}] repeats image id {key!r}")
        per_image[key] = (img, size, [])
    orphans = 0
    for i, ann in enumerate(anns):
        try:
            if not isinstance(ann, dict):
                raise TypeError("not an object")
            if _number(ann.get("category_id", 1), "category_id") != 1:
                continue
            bbox = _box4(ann["bbox"], "bbox")
            entry = (bbox,
                     _box4(ann.get("f_bbox", [0, 0, 0, 0]), "f_bbox"),
                     _box4(ann.get("h_bbox", [0, 0, 0, 0]), "h_bbox"),
                     _number(ann.get("vis_ratio", 1.0), "vis_ratio"),
                     bool(_number(ann.get("ignore", 0), "ignore")),
                     _number(ann.get("height", bbox[3]), "height"))
            key = ann["image_id"]
            hash(key)
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"{path}: annotations[{i}] is malformed ({type(err).__name__}: "
                            f"{str(err)[:80]})", "needs image_id and bbox [x, y, w, h]") from err
        if key not in per_image:
            orphans += 1
            continue
        per_image[key][2].append(entry)
    if orphans:
        warnings.warn(f"{path}: {orphans} annotations name no image of 'images'; skipped",
                      stacklevel=3)
    records, stats = [], {"bad_lines": [], "ignored_boxes": 0, "orphan_annotations": orphans}
    for img, (width, height), entries in per_image.values():
        n = len(entries)
        col = list(zip(*entries)) if n else [[]] * 6

        def boxes(j: int, _col=col, _n=n) -> np.ndarray:
            raw = np.array(_col[j], float).reshape(_n, 4)
            return np.where(raw[:, 2:3] > 1, xywh_to_xyxy(raw), 0.0)

        faces = boxes(1)
        rec = PairRecord(
            image_id=str(img["file_name"]), width=int(width), height=int(height),
            bodies=xywh_to_xyxy(np.array(col[0], float).reshape(n, 4)),
            faces=faces, heads=boxes(2), has_face=_valid(faces),
            vis_ratio=np.array(col[3], float).reshape(n),
            ignore=np.array(col[4], bool).reshape(n),
            path=_resolve_image(image_dir, img["file_name"]),
            heights=np.array(col[5], float).reshape(n),
            face_heights=np.array([f[3] for f in col[1]], float).reshape(n),
        )
        stats["ignored_boxes"] += int(rec.ignore.sum())
        records.append(rec)
    return records, stats


def load_bfjdet_json(path: str | Path, image_dir: str | Path) -> tuple[list[PairRecord], dict]:
    """Read BFJDet's COCO-style body-face annotation (CrowdHuman or CityPersons)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"BFJDet annotation not found: {path}")
    data = _read_json(path)
    if not (isinstance(data, dict) and "images" in data and "annotations" in data):
        raise DataError(f"{path} has no 'images' and 'annotations' lists",
                        f"expected {LAYOUTS}")
    return _bfjdet_records(data, path, Path(image_dir))


# ------------------------------------------------------------------ official PairDETR JSON


def _official_row(row, where: str) -> list[float]:
    if not isinstance(row, (list, tuple)) or len(row) != 9:
        raise TypeError(f"{where} is not a list of 9 numbers")
    values = [_number(v, where) for v in row]
    if values[0] not in (0.0, 1.0):
        raise ValueError(f"{where}: class {values[0]} is not 0 or 1")
    boxes = np.array(values[1:]).reshape(2, 4)  # cx, cy, w, h
    low, high = boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2
    tol = 1e-3  # the official files are clipped to [0, 1]; allow rounding
    if (boxes[:, 2:] < 0).any() or (low < -tol).any() or (high > 1 + tol).any():
        raise ValueError(f"{where}: boxes are not normalised cx, cy, w, h inside [0, 1]")
    return values


def _official_records(data: dict, path: Path, image_dir: Path) -> tuple[list[PairRecord], dict]:
    records, stats = [], {"bad_lines": [], "ignored_boxes": 0, "pairs": 0}
    for name, rows in data.items():
        if not isinstance(rows, list):
            raise DataError(f"{path}: value of {name!r} is not a list of rows", f"expected "
                            f"{LAYOUTS}")
        try:
            table = np.array([_official_row(r, f"{name!r} row {i}") for i, r in enumerate(rows)],
                             float).reshape(len(rows), 9)
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}: {str(err)[:160]}", f"expected {LAYOUTS}") from err
        n = len(table)
        cls = table[:, 0].astype(int)
        first = table[:, 1:5]  # body
        second = np.concatenate([table[:, 5:7] - table[:, 7:9] / 2,
                                 table[:, 5:7] + table[:, 7:9] / 2], 1)  # face / head, xyxy
        is_pair = cls == LABEL_PAIR
        records.append(PairRecord(
            image_id=name, width=0, height=0,
            bodies=np.concatenate([first[:, :2] - first[:, 2:] / 2,
                                   first[:, :2] + first[:, 2:] / 2], 1),
            faces=np.where(is_pair[:, None], second, 0.0),
            heads=np.where(is_pair[:, None], 0.0, second),
            has_face=is_pair, vis_ratio=np.ones(n), ignore=np.zeros(n, bool),
            path=_resolve_image(image_dir, name), normalized=True))
        stats["pairs"] += int(is_pair.sum())
    if not records:
        raise DataError(f"{path} holds no image", f"expected {LAYOUTS}")
    return records, stats


def load_official_json(path: str | Path, image_dir: str | Path) -> tuple[list[PairRecord], dict]:
    """Read an annotation file of the official code ({image: [[cls, body cxcywh, face/head
    cxcywh], ...]}, normalised). Records stay normalised until the image is decoded."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"annotation not found: {path}")
    data = _read_json(path)
    if not isinstance(data, dict) or "images" in data:
        raise DataError(f"{path} is not in the official PairDETR layout", f"expected {LAYOUTS}")
    return _official_records(data, path, Path(image_dir))


def load_annotation_file(path: str | Path, image_dir: str | Path,
                         skip_bad_lines: bool = True) -> tuple[list[PairRecord], dict]:
    """Any supported annotation file: .odgt by suffix, JSON layouts by content."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"annotation file not found: {path}",
                               "set data_root / data_train_ann / data_val_ann (README: folder "
                               "trees)")
    if path.suffix == ".odgt":
        return load_crowdhuman_odgt(path, image_dir, skip_bad_lines)
    data = _read_json(path)
    if isinstance(data, dict) and ("images" in data or "annotations" in data):
        if "images" in data and "annotations" in data:
            return _bfjdet_records(data, path, Path(image_dir))
        missing = "annotations" if "images" in data else "images"
        raise DataError(f"{path} looks like BFJDet JSON but has no '{missing}' list",
                        f"expected {LAYOUTS}")
    if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
        return _official_records(data, path, Path(image_dir))
    raise DataError(f"{path} is in neither annotation layout", f"expected {LAYOUTS}, or a "
                    "CrowdHuman .odgt file")


def load_dataset_records(name: str, root: str, split: str, ann: str = "",
                         skip_bad_lines: bool = True) -> tuple[list[PairRecord], dict]:
    """Records of the paper's datasets in their published layouts (README: folder trees)."""
    root_path = Path(root)
    if not root or not root_path.is_dir():
        raise MissingPathError(f"data_root {root!r} is not a folder",
                               "see README 'Paper settings and datasets'")
    if name == "crowdhuman":
        ann_path = root_path / (ann or f"annotation_{split}.odgt")
        if not ann_path.is_file():
            raise MissingPathError(f"CrowdHuman annotation not found: {ann_path}",
                                   "expected <data_root>/annotation_train.odgt, "
                                   "annotation_val.odgt, Images/")
        return load_annotation_file(ann_path, root_path / "Images", skip_bad_lines)
    if name == "citypersons":
        ann_path = root_path / (ann or f"annotations/instances_{split}_bhfmatch_new.json")
        if not ann_path.is_file():
            raise MissingPathError(
                f"CityPersons annotation not found: {ann_path}",
                "expected <data_root>/annotations/instances_{train,val}_bhfmatch_new.json and "
                "leftImg8bit/{train,val}/<city>/")
        return load_annotation_file(ann_path, root_path / "leftImg8bit" / split, skip_bad_lines)
    raise ConfigError(f"unknown dataset {name!r}", "data_name: synthetic, crowdhuman, citypersons")


# ------------------------------------------------------------------ synthetic crowd


def _ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    return ((yy - cy) / max(ry, 0.5)) ** 2 + ((xx - cx) / max(rx, 0.5)) ** 2 <= 1.0


def _person_masks(yy, xx, x1, y1, bw, bh) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Silhouette, head and face masks of one person standing in box (x1, y1, bw, bh)."""
    cx, r = x1 + bw / 2, 0.12 * bh  # big cartoon heads: faces stay >= ~6 px at 96 px
    head = _ellipse(yy, xx, y1 + r, cx, r, 0.85 * r)
    torso = _ellipse(yy, xx, y1 + 2 * r + 0.22 * bh, cx, 0.24 * bh, bw / 2)
    legs = (yy >= y1 + 0.45 * bh) & (yy <= y1 + bh) & (
        (np.abs(xx - (cx - 0.18 * bw)) <= 0.13 * bw) | (np.abs(xx - (cx + 0.18 * bw)) <= 0.13 * bw))
    face = _ellipse(yy, xx, y1 + 1.15 * r, cx, 0.75 * r, 0.6 * r)
    boxes = {"head": (cx - 0.85 * r, y1, cx + 0.85 * r, y1 + 2 * r),
             "face": (cx - 0.6 * r, y1 + 0.4 * r, cx + 0.6 * r, y1 + 1.9 * r)}
    return head | torso | legs, head, face, boxes


def render_synthetic_crowd(rng: np.random.Generator, height: int = 128, width: int = 160,
                           max_people: int = 6) -> PairRecord:
    """One synthetic crowd image with bodies, faces (front views), occlusion and pairing."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    top, bottom = rng.uniform(60, 200, 3), rng.uniform(60, 200, 3)
    t = (yy / height)[..., None]
    canvas = (1 - t) * top + t * bottom + rng.normal(0, 6, (height, width, 3))
    for _ in range(rng.integers(0, 4)):  # distractor blocks
        x0, y0 = rng.integers(0, width - 8), rng.integers(0, height - 8)
        canvas[y0:y0 + rng.integers(4, 24), x0:x0 + rng.integers(4, 24)] = rng.uniform(0, 255, 3)
    n = int(rng.integers(1, max_people + 1))
    group_x = rng.uniform(0.25, 0.75) * width
    people = []
    for _ in range(n):
        bh = rng.uniform(0.35, 0.8) * height
        bw = bh * rng.uniform(0.3, 0.42)
        y2 = rng.uniform(max(bh, 0.6 * height), height + 0.05 * bh)
        x1 = float(np.clip(group_x + rng.normal(0, 0.25 * width) - bw / 2, -0.1 * bw,
                           width - 0.9 * bw))
        people.append((y2, x1, y2 - bh, bw, bh, rng.random() < 0.7))
    people.sort(key=lambda p: p[0])  # far (higher foot point) first: near people occlude them
    owner = np.full((height, width), -1)
    masks = []
    for i, (_, x1, y1, bw, bh, front) in enumerate(people):
        body, head, face, boxes = _person_masks(yy, xx, x1, y1, bw, bh)
        canvas[body] = rng.uniform(20, 235, 3)  # clothes
        canvas[head] = rng.uniform(10, 60, 3)  # hair (a back view is all hair)
        if front:
            canvas[face] = np.array([225, 180, 150]) * rng.uniform(0.6, 1.05)
            for side in (-1, 1):  # eyes
                eye = _ellipse(yy, xx, boxes["face"][1] + 0.35 * (boxes["face"][3] -
                               boxes["face"][1]), (x1 + bw / 2) + side * 0.25 * bw / 2.2, 0.8, 0.8)
                canvas[eye & face] = 30
        owner[body] = i
        masks.append((body, face, boxes, x1, y1, bw, bh, front))
    bodies, faces, heads, has_face, vis = [], [], [], [], []
    for i, (body, face, boxes, x1, y1, bw, bh, front) in enumerate(masks):
        visible = owner == i
        vis.append(float((body & visible).sum() / max(body.sum(), 1)))
        face_vis = (face & visible).sum() / max(face.sum(), 1)
        bodies.append((x1, y1, x1 + bw, y1 + bh))
        heads.append(boxes["head"])
        ok = front and face_vis >= 0.6 and (boxes["face"][3] - boxes["face"][1]) >= 3
        has_face.append(ok)
        faces.append(boxes["face"] if ok else (0.0, 0.0, 0.0, 0.0))
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    return PairRecord(
        image_id="", width=width, height=height, bodies=np.array(bodies, float),
        faces=np.array(faces, float), heads=np.array(heads, float),
        has_face=np.array(has_face, bool), vis_ratio=np.array(vis, float),
        ignore=np.zeros(len(bodies), bool), image=image)


def make_synthetic_records(num_images: int, seed: int, height: int = 128, width: int = 160,
                           max_people: int = 6) -> list[PairRecord]:
    """A reproducible synthetic crowd split (same seed -> same images)."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(num_images):
        rec = render_synthetic_crowd(rng, height, width, max_people)
        rec.image_id = f"synthetic_{seed}_{i:05d}"
        records.append(rec)
    return records


# ------------------------------------------------------------------ dataset


def load_image(record: PairRecord) -> np.ndarray:
    """[H, W, 3] uint8 RGB; raises OSError naming the file when it cannot be decoded."""
    if record.image is not None:
        return record.image
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(record.path) as img:
            return np.asarray(img.convert("RGB"))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise OSError(f"cannot decode image {record.path}: {err}") from err


def pair_mask(faces: np.ndarray, has_face: np.ndarray, width: float, height: float,
              min_face_area: float = 0.0) -> np.ndarray:
    """Which persons become class-0 pairs: a visible face whose area is at least
    `min_face_area` of the image area (1e-4 reproduces the official CityPersons files)."""
    area = (faces[:, 2] - faces[:, 0]) * (faces[:, 3] - faces[:, 1]) / max(width * height, 1e-12)
    return has_face & _valid(faces) & (area >= min_face_area)


def record_targets(record: PairRecord, width: int, height: int,
                   min_face_area: float = 0.0) -> tuple[dict, int]:
    """Training targets of a record at its pixel size: (target dict, number of clipped boxes).

    A visible face smaller than `min_face_area` x image area counts as "no visible face"
    (class 1, head in the second slot), the official files' pair rule (README "Class-0 rule").
    """
    keep = ~record.ignore & _valid(record.bodies)
    bodies, n_clip = clip_boxes(record.bodies[keep], width, height)
    faces, n_clip_f = clip_boxes(record.faces[keep], width, height)
    heads = np.where(_valid(record.heads[keep])[:, None], record.heads[keep],
                     approximate_head(bodies))
    heads, _ = clip_boxes(heads, width, height)
    has_face = pair_mask(faces, record.has_face[keep], width, height, min_face_area)
    second = np.where(has_face[:, None], faces, heads)  # face slot of a faceless body = head
    pair = np.concatenate([bodies, second], 1).reshape(-1, 2, 4)  # [T, 2, 4] xyxy
    scale = np.array([width, height, width, height], float)
    cxcywh = np.concatenate([(pair[..., :2] + pair[..., 2:]) / 2, pair[..., 2:] - pair[..., :2]],
                            -1) / scale  # [T, 2, 4]
    target = {
        "boxes": torch.as_tensor(cxcywh.reshape(-1, 8), dtype=torch.float32),
        "labels": torch.as_tensor(np.where(has_face, LABEL_PAIR, LABEL_BODY_ONLY), dtype=torch.int64),
    }
    return target, n_clip + n_clip_f


def pairs_to_single_boxes(target: dict) -> dict:
    """Pair targets -> two-stage baseline targets: bodies (label 0) and visible faces (label 1)."""
    boxes, labels = target["boxes"], target["labels"]
    faces = boxes[labels == LABEL_PAIR, 4:]
    return {"boxes": torch.cat([boxes[:, :4], faces]),
            "labels": torch.cat([torch.zeros(len(boxes), dtype=torch.int64),
                                 torch.ones(len(faces), dtype=torch.int64)])}


def resize_shape(height: int, width: int, short: int, max_size: int) -> tuple[int, int]:
    scale = short / min(height, width)
    if max(height, width) * scale > max_size:
        scale = max_size / max(height, width)
    return max(round(height * scale), 1), max(round(width * scale), 1)


class PairDataset(torch.utils.data.Dataset):
    """Records -> (image [3, H, W], target) with resize, optional flip and ImageNet normalisation.

    Items are indexed by (index, flip, short_side) so that the sampler, not worker state, decides
    the augmentation (reproducible resume). A record whose image fails to decode yields None
    (the collate function drops it) after a warning naming the file.
    """

    def __init__(self, records: list[PairRecord], image_size: int, max_size: int,
                 single_boxes: bool = False, min_face_area: float = 0.0):
        self.records, self.image_size, self.max_size = records, image_size, max_size
        self.single_boxes, self.min_face_area = single_boxes, min_face_area

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, item) -> tuple[torch.Tensor, dict] | None:
        index, flip, short = item if isinstance(item, tuple) else (item, False, self.image_size)
        record = self.records[index]
        try:
            array = load_image(record)
        except OSError as err:
            warnings.warn(f"{err}; image skipped", stacklevel=2)
            return None
        height, width = array.shape[:2]
        if record.width and (record.width, record.height) != (width, height):
            warnings.warn(f"{record.path}: annotated size {record.width}x{record.height} != "
                          f"decoded {width}x{height}; using the decoded size", stacklevel=2)
        record.to_pixels(width, height)
        target, n_clipped = record_targets(record, width, height, self.min_face_area)
        image = torch.from_numpy(np.array(array, copy=True)).permute(2, 0, 1).float() / 255
        new_h, new_w = resize_shape(height, width, short, self.max_size)
        image = F.interpolate(image[None], size=(new_h, new_w), mode="bilinear",
                              align_corners=False)[0]  # [3, h, w]
        if flip:
            image = image.flip(-1)
            boxes = target["boxes"].clone()
            boxes[:, 0::4] = 1 - boxes[:, 0::4]  # body and face centre x
            target["boxes"] = boxes
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        image = (image - mean) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
        if self.single_boxes:
            target = pairs_to_single_boxes(target)
        target.update(index=index, num_clipped=n_clipped, orig_size=(height, width))
        return image, target


def collate(batch: list) -> dict | None:
    """Pad images to the batch maximum: {"pixel_values" [B,3,H,W], "pixel_mask" [B,H,W], targets}."""
    batch = [b for b in batch if b is not None]
    if not batch:
        return None
    height = max(img.shape[1] for img, _ in batch)
    width = max(img.shape[2] for img, _ in batch)
    pixels = torch.zeros(len(batch), 3, height, width)
    mask = torch.zeros(len(batch), height, width, dtype=torch.long)
    for i, (img, _) in enumerate(batch):
        pixels[i, :, :img.shape[1], :img.shape[2]] = img
        mask[i, :img.shape[1], :img.shape[2]] = 1
    return {"pixel_values": pixels, "pixel_mask": mask, "targets": [t for _, t in batch]}


class StepBatchSampler(torch.utils.data.Sampler):
    """Batches of (index, flip, short side) for steps [start, steps); a pure function of the seed.

    Under DDP each rank takes every `world`-th item of the global batch order.
    """

    def __init__(self, n: int, batch_size: int, steps: int, seed: int, start: int = 0,
                 hflip: bool = True, scales: tuple[int, ...] = (), default_short: int = 128,
                 rank: int = 0, world: int = 1):
        self.n, self.batch, self.steps, self.seed, self.start = n, batch_size, steps, seed, start
        self.hflip, self.scales, self.short = hflip, scales, default_short
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return max(self.steps - self.start, 0)

    def batch_for_step(self, step: int) -> list[tuple[int, bool, int]]:
        global_batch = self.batch * self.world
        per_epoch = max(self.n // global_batch, 1)
        epoch, offset = divmod(step, per_epoch)
        perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        flips = torch.rand(global_batch, generator=gen) < 0.5
        picks = torch.randint(0, max(len(self.scales), 1), (global_batch,), generator=gen)
        items = []
        for j in range(self.rank, global_batch, self.world):
            index = int(perm[(offset * global_batch + j) % self.n])
            short = self.scales[int(picks[j])] if self.scales else self.short
            items.append((index, bool(flips[j]) and self.hflip, short))
        return items

    def __iter__(self):
        for step in range(self.start, self.steps):
            yield self.batch_for_step(step)


def synthetic_image_shape(image_size: int, max_size: int) -> tuple[int, int]:
    """(height, width) of synthetic images: short side `image_size`, aspect 5:4 capped."""
    return image_size, min(max_size, math.ceil(image_size * 1.25))
