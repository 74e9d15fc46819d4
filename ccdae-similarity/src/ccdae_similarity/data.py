"""Vocabularies, tensor batches of the concept world, and loaders for real benchmarks.

Shapes: B batch, L token length, H W image side.
Real benchmark files (README "Datasets"): Crisscrossed Captions (CxC, MS-COCO val2014) SIS/STS csv
files with the COCO images and Karpathy `dataset_coco.json`; STS-B in its GLUE tsv form; or a
generic `pairs.csv` (columns a,b,score; a/b are image paths relative to data_root or texts).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import world
from .runtime import ConfigError, DataError, MissingPathError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class Vocab:
    """Word <-> id map; ids 0..3 are <pad> <bos> <eos> <unk>."""

    def __init__(self, words: list[str]) -> None:
        self.itos = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def id(self, word: str) -> int:
        return self.stoi.get(word, self.stoi[UNK])

    def encode(self, words: list[str] | tuple[str, ...]) -> list[int]:
        return [self.id(w) for w in words]

    def decode(self, ids: list[int]) -> tuple[str, ...]:
        out = []
        for i in ids:
            word = self.itos[i]
            if word == EOS:
                break
            if word not in SPECIALS and not word.startswith("<c"):
                out.append(word)
        return tuple(out)


def budget_token(c: int) -> str:
    return f"<c{c}>"


def description_vocab(max_complexity: int = world.LEVELS) -> Vocab:
    """Description words plus one budget token <c0>..<cC> per complexity (the 'prompt')."""
    return Vocab([budget_token(c) for c in range(max_complexity + 1)]
                 + world.description_vocabulary())


def text_vocab() -> Vocab:
    return Vocab(world.text_vocabulary())


def pad_batch(seqs: list[list[int]], pad_id: int = 0, min_len: int = 1) -> torch.Tensor:
    """Right-pad integer sequences to [B, L] (L >= min_len)."""
    length = max([min_len] + [len(s) for s in seqs])
    out = torch.full((len(seqs), length), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def condition_ids(descriptions: list[tuple[str, ...]], vocab: Vocab) -> torch.Tensor:
    """Condition tokens for a likelihood model: [<bos>, w_1..w_c] (never empty). [B, L]."""
    return pad_batch([[vocab.stoi[BOS]] + vocab.encode(d) for d in descriptions])


def text_ids(texts: list[str], vocab: Vocab) -> torch.Tensor:
    """Sentence tokens (whitespace words), no bos/eos: encoder input. [B, L]."""
    for t in texts:
        if not t.strip():
            raise ValueError("empty text sample: every text must hold at least one word")
    return pad_batch([vocab.encode(t.split()) for t in texts])


@dataclass
class WorldBatch:
    images: torch.Tensor  # [B, 3, H, W] in [0, 1]
    texts: list[str]
    graphs: list[tuple[int, ...]]


def sample_world_batch(rng: np.random.Generator, batch_size: int, image_size: int,
                       pixel_noise: float) -> WorldBatch:
    graphs, images, texts = [], [], []
    for _ in range(batch_size):
        graph, nuis = world.random_graph(rng), world.random_nuisance(rng)
        graphs.append(graph)
        images.append(world.render(graph, nuis, image_size, pixel_noise))
        texts.append(world.realise(graph, nuis))
    return WorldBatch(torch.from_numpy(np.stack(images)), texts, graphs)


def render_samples(samples: list[world.Sample], image_size: int,
                   pixel_noise: float) -> torch.Tensor:
    """[N, 3, H, W] renderings of benchmark samples."""
    return torch.from_numpy(np.stack([world.render(s.graph, s.nuisance, image_size, pixel_noise)
                                      for s in samples]))


# ----------------------------------------------------------------------------- real benchmarks
def load_image(path: str | Path, size: int) -> torch.Tensor:
    """Read an image file as [3, size, size] float in [0, 1]; a missing file is a
    MissingPathError, an unreadable one a DataError."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"image file not found: {path}", "README 'Datasets'")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BICUBIC)
            array = np.asarray(im, dtype=np.float32) / 255.0
    except Exception as err:  # PIL raises several types for corrupt files
        raise DataError(f"unreadable image file {path}: {type(err).__name__}",
                        "re-extract the benchmark images") from err
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()  # [3, H, W]


@dataclass
class RealPairs:
    modality: str  # "image" | "text"
    a: list[str]  # image paths or texts
    b: list[str]
    score: np.ndarray  # human similarity (higher = more similar)


def _read_csv(path: Path, required: tuple[str, ...], delimiter: str = ",") -> list[dict]:
    """Rows of a csv/tsv with the `required` columns, each holding a value; DataError names the
    first bad line."""
    if not path.is_file():
        raise MissingPathError(f"expected benchmark file {path}", "README 'Datasets'")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_NONE))
    except (UnicodeDecodeError, csv.Error) as err:
        kind = "tsv" if delimiter == "\t" else "csv"
        raise DataError(f"{path} is not a UTF-8 {kind} file: {type(err).__name__}",
                        "README 'Datasets'") from err
    if not rows or any(k not in rows[0] for k in required):
        raise DataError(f"{path}: expected columns {list(required)}, "
                        f"got {list(rows[0]) if rows else 'no rows'}", "README 'Datasets'")
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        if any(row.get(k) in (None, "") for k in required):
            raise DataError(f"{path}:{line}: empty or missing value in columns {list(required)}",
                            "README 'Datasets'")
    return rows


def _scores(path: Path, rows: list[dict], column: str) -> np.ndarray:
    """The human-score column as floats; DataError names the first non-number's line."""
    out = np.empty(len(rows))
    for line, row in enumerate(rows, start=2):
        try:
            out[line - 2] = float(row[column])
        except ValueError:
            raise DataError(f"{path}:{line}: {column}={row[column]!r} is not a number",
                            "README 'Datasets'") from None
        if not np.isfinite(out[line - 2]):
            raise DataError(f"{path}:{line}: {column}={row[column]!r} is not finite",
                            "README 'Datasets'")
    return out


def _karpathy_sentences(path: Path) -> dict[int, str]:
    """sentid -> raw caption from the Karpathy split file."""
    if not path.is_file():
        raise MissingPathError(f"expected {path} (Karpathy split json with sentids)",
                               "README 'Datasets'")
    try:
        images = json.loads(path.read_text(encoding="utf-8"))["images"]
        return {int(s["sentid"]): str(s["raw"]) for im in images for s in im["sentences"]}
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError is a ValueError
        raise DataError(f"{path} is not a Karpathy split file ({type(err).__name__}: {err})",
                        "expected {'images': [{'sentences': [{'sentid', 'raw'}]}]}") from err


def _cxc_captions(path: Path, rows: list[dict], sent: dict[int, str]) -> tuple[list, list]:
    """CxC STS caption ids ('<image>:<sentid>') -> caption texts."""
    a, b = [], []
    for line, row in enumerate(rows, start=2):
        try:
            a.append(sent[int(row["caption1"].split(":")[-1])])
            b.append(sent[int(row["caption2"].split(":")[-1])])
        except (ValueError, KeyError):
            raise DataError(f"{path}:{line}: caption ids {row['caption1']!r}, {row['caption2']!r} "
                            "are not sentids of dataset_coco.json", "README 'Datasets'") from None
    return a, b


def load_real_pairs(name: str, root: str | Path, split: str = "test",
                    max_pairs: int = 0) -> RealPairs:
    """Load a human-similarity benchmark from its published files.

    cxc_sis: root/cxc/sis_<split>.csv + root/coco/val2014/<image1>.jpg
    cxc_sts: root/cxc/sts_<split>.csv + root/coco/dataset_coco.json (Karpathy, with sentids)
    stsb:    root/STS-B/<dev|test>.tsv (GLUE format: sentence1, sentence2, score)
    pairs_csv: root/pairs.csv with columns a,b,score
    """
    root = Path(root)
    if not str(root) or not root.is_dir():
        raise MissingPathError(f"data_root {str(root)!r} is not a folder",
                               "set --data_root to the benchmark folder, README 'Datasets'")
    if name == "cxc_sis":
        path = root / "cxc" / f"sis_{split}.csv"
        rows = _read_csv(path, ("image1", "image2", "agg_score"))
        img = root / "coco" / "val2014"
        a = [str(img / r["image1"]) for r in rows]
        b = [str(img / r["image2"]) for r in rows]
        out = RealPairs("image", a, b, _scores(path, rows, "agg_score"))
    elif name == "cxc_sts":
        path = root / "cxc" / f"sts_{split}.csv"
        rows = _read_csv(path, ("caption1", "caption2", "agg_score"))
        a, b = _cxc_captions(path, rows, _karpathy_sentences(root / "coco" / "dataset_coco.json"))
        out = RealPairs("text", a, b, _scores(path, rows, "agg_score"))
    elif name == "stsb":
        path = root / "STS-B" / f"{'dev' if split == 'val' else split}.tsv"
        rows = _read_csv(path, ("sentence1", "sentence2", "score"), delimiter="\t")
        out = RealPairs("text", [r["sentence1"] for r in rows], [r["sentence2"] for r in rows],
                        _scores(path, rows, "score"))
    elif name == "pairs_csv":
        path = root / "pairs.csv"
        rows = _read_csv(path, ("a", "b", "score"))
        is_image = rows[0]["a"].lower().endswith(IMAGE_SUFFIXES)
        fix = (lambda v: str(root / v)) if is_image else (lambda v: v)
        out = RealPairs("image" if is_image else "text", [fix(r["a"]) for r in rows],
                        [fix(r["b"]) for r in rows], _scores(path, rows, "score"))
    else:
        raise ConfigError(f"unknown benchmark {name!r}",
                          "bench_name: world, cxc_sis, cxc_sts, stsb, pairs_csv")
    if max_pairs:
        out = RealPairs(out.modality, out.a[:max_pairs], out.b[:max_pairs], out.score[:max_pairs])
    return out
