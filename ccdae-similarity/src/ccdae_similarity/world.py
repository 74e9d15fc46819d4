"""Procedural concept world: scene graphs, the coarse-to-fine description grammar, a renderer
(images), a realiser (free-form sentences), and benchmark pairs with known conceptual similarity.

This is the offline stand-in for the paper's natural data (natural images and
sentences). A scene graph is a tuple of LEVELS values, coarse to fine:

    level 0 scene    (day / night / beach / forest)      -> background colour
    level 1 shape    (circle / square / triangle / cross)
    level 2 count    (one / two / three)
    level 3 colour   (red / green / blue / yellow)
    level 4 size     (small / large)
    level 5 position (left / right / top / bottom)

The grammar's description at complexity c is the first c level words, so its token length *is*
its complexity and the level-k description is a prefix of the level-(k+1) one (nested).
Ground-truth conceptual similarity of two graphs = number of leading levels they share
(index of the first differing level; LEVELS when the graphs agree). Nuisance factors (lighting,
texture, exact placement and size jitter, pixel noise; for text: template and synonyms) are never
described, so surface-similar samples can be conceptually far and vice versa (the paper's
motivating case, introduction / Fig. 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL_NAMES = ("scene", "shape", "count", "colour", "size", "position")
LEVEL_VALUES: tuple[tuple[str, ...], ...] = (
    ("day", "night", "beach", "forest"),
    ("circle", "square", "triangle", "cross"),
    ("one", "two", "three"),
    ("red", "green", "blue", "yellow"),
    ("small", "large"),
    ("left", "right", "top", "bottom"),
)
LEVELS = len(LEVEL_VALUES)

BACKGROUND = {"day": (0.62, 0.78, 0.95), "night": (0.10, 0.10, 0.28),
              "beach": (0.93, 0.84, 0.58), "forest": (0.16, 0.42, 0.20)}
OBJECT_RGB = {"red": (0.90, 0.12, 0.10), "green": (0.20, 0.85, 0.25),
              "blue": (0.15, 0.25, 0.95), "yellow": (0.98, 0.90, 0.10)}
REGION = {"left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28), "bottom": (0.5, 0.72)}

# Free-form text: synonyms and templates are nuisance (never part of the description).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "day": ("day", "daytime", "sunny day"), "night": ("night", "nighttime", "dark night"),
    "beach": ("beach", "seaside", "shore"), "forest": ("forest", "woods", "woodland"),
    "circle": ("circle", "disc", "round blob"), "square": ("square", "box", "block"),
    "triangle": ("triangle", "wedge", "pyramid"), "cross": ("cross", "plus", "x mark"),
    "one": ("one", "a single", "a"), "two": ("two", "a pair of", "2"),
    "three": ("three", "3", "a trio of"),
    "red": ("red", "crimson", "scarlet"), "green": ("green", "emerald", "lime"),
    "blue": ("blue", "azure", "navy"), "yellow": ("yellow", "golden", "amber"),
    "small": ("small", "tiny", "little"), "large": ("large", "big", "huge"),
    "left": ("on the left", "at the left side", "to the left"),
    "right": ("on the right", "at the right side", "to the right"),
    "top": ("at the top", "up high", "near the top"),
    "bottom": ("at the bottom", "down low", "near the bottom"),
}
TEMPLATES = (
    "{count} {size} {colour} {shape} {position} in the {scene}",
    "{scene} scene with {count} {size} {colour} {shape} {position}",
    "there is {count} {colour} {shape} , {size} , {position} during the {scene}",
    "{position} we see {count} {size} {colour} {shape} at {scene}",
)


def plural(word: str) -> str:
    """Plural of the last word of a (possibly multi-word) shape synonym."""
    head, _, last = word.rpartition(" ")
    last = last + ("es" if last.endswith(("x", "s")) else "s")
    return f"{head} {last}".strip()


@dataclass(frozen=True)
class Nuisance:
    """Undescribed factors of one rendering/realisation (drawn independently per sample)."""

    lighting: float  # background brightness multiplier
    jitter: tuple[float, float]  # group offset, fraction of the image side
    size_jitter: float  # radius multiplier
    texture_seed: int
    template: int
    synonym_choice: tuple[int, ...]  # one index per level


def random_graph(rng: np.random.Generator) -> tuple[int, ...]:
    return tuple(int(rng.integers(len(v))) for v in LEVEL_VALUES)


def random_nuisance(rng: np.random.Generator) -> Nuisance:
    return Nuisance(
        lighting=float(rng.uniform(0.7, 1.3)),
        jitter=(float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.06, 0.06))),
        size_jitter=float(rng.uniform(0.85, 1.15)),
        texture_seed=int(rng.integers(2**31 - 1)),
        template=int(rng.integers(len(TEMPLATES))),
        synonym_choice=tuple(int(rng.integers(3)) for _ in range(LEVELS)),
    )


def graph_words(graph: tuple[int, ...]) -> list[str]:
    """The full (complexity LEVELS) description: one word per level, coarse to fine."""
    assert len(graph) == LEVELS, graph
    return [LEVEL_VALUES[k][v] for k, v in enumerate(graph)]


def describe(graph: tuple[int, ...], complexity: int) -> list[str]:
    """The grammar's description at budget `complexity` tokens (a prefix of the full one)."""
    return graph_words(graph)[: max(0, min(complexity, LEVELS))]


def similarity_level(graph_a: tuple[int, ...], graph_b: tuple[int, ...]) -> int:
    """Ground-truth conceptual similarity: index of the first differing level (LEVELS if equal)."""
    for k, (a, b) in enumerate(zip(graph_a, graph_b)):
        if a != b:
            return k
    return LEVELS


def _shape_mask(name: str, xx: np.ndarray, yy: np.ndarray, cx: float, cy: float,
                r: float) -> np.ndarray:
    dx, dy = xx - cx, yy - cy
    if name == "circle":
        return dx**2 + dy**2 <= r**2
    if name == "square":
        return (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    if name == "triangle":  # apex up
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= (dy + r) * 0.6)
    thick = r / 3.0  # cross
    return ((np.abs(dx) <= thick) & (np.abs(dy) <= r)) | ((np.abs(dy) <= thick) & (np.abs(dx) <= r))


def render(graph: tuple[int, ...], nuisance: Nuisance, size: int = 32,
           pixel_noise: float = 0.03) -> np.ndarray:
    """Render a scene graph to an RGB image.

    Returns:
        [3, size, size] float32 in [0, 1].
    """
    scene, shape, count, colour, obj_size, position = graph_words(graph)
    rng = np.random.default_rng(nuisance.texture_seed)
    yy, xx = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    # low-frequency texture: a bilinear upsampling of a 4x4 random field
    coarse = rng.normal(0.0, 0.06, size=(4, 4))
    idx = np.linspace(0, 3, size)
    i0 = np.floor(idx).astype(int).clip(0, 2)
    frac = idx - i0
    rows = coarse[i0] * (1 - frac)[:, None] + coarse[i0 + 1] * frac[:, None]  # [size, 4]
    texture = rows[:, i0] * (1 - frac)[None, :] + rows[:, i0 + 1] * frac[None, :]  # [size, size]
    bg = np.asarray(BACKGROUND[scene])[:, None, None] * nuisance.lighting + texture[None]
    image = np.broadcast_to(bg, (3, size, size)).copy()
    n = LEVEL_VALUES[2].index(count) + 1
    radius = (0.09 if obj_size == "small" else 0.15) * size * nuisance.size_jitter
    cx, cy = REGION[position]
    cx, cy = (cx + nuisance.jitter[0]) * size, (cy + nuisance.jitter[1]) * size
    spacing = 2.2 * radius
    horizontal = position in ("top", "bottom")  # groups spread along the free axis
    for j in range(n):
        offset = (j - (n - 1) / 2) * spacing
        ox, oy = (cx + offset, cy) if horizontal else (cx, cy + offset)
        mask = _shape_mask(shape, xx, yy, ox, oy, radius)
        image[:, mask] = np.asarray(OBJECT_RGB[colour])[:, None]
    image = image + rng.normal(0.0, pixel_noise, size=image.shape)
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def realise(graph: tuple[int, ...], nuisance: Nuisance) -> str:
    """Write a free-form sentence for the graph (template and synonyms are nuisance)."""
    words = graph_words(graph)
    slots = {}
    for k, (name, word) in enumerate(zip(LEVEL_NAMES, words)):
        slots[name] = SYNONYMS[word][nuisance.synonym_choice[k] % len(SYNONYMS[word])]
    if words[2] != "one":
        slots["shape"] = plural(slots["shape"])
    return TEMPLATES[nuisance.template % len(TEMPLATES)].format(**slots)


def text_vocabulary() -> list[str]:
    """Every word the realiser can emit (sorted, deterministic)."""
    words: set[str] = set()
    for template in TEMPLATES:
        words.update(w for w in template.split() if not w.startswith("{"))
    for syns in SYNONYMS.values():
        for s in syns:
            words.update(s.split())
            words.update(plural(s).split())
    return sorted(words)


def description_vocabulary() -> list[str]:
    return [w for values in LEVEL_VALUES for w in values]


@dataclass(frozen=True)
class Sample:
    graph: tuple[int, ...]
    nuisance: Nuisance


@dataclass(frozen=True)
class Pair:
    a: Sample
    b: Sample
    level: int  # ground-truth similarity (first differing level; LEVELS = same concept)
    kind: str  # "random" | "surface_near_concept_far" | "surface_far_concept_same"


def _differ_at(rng: np.random.Generator, graph: tuple[int, ...], level: int) -> tuple[int, ...]:
    """A graph sharing levels < level with `graph`, different at `level`, random after it."""
    if level >= LEVELS:
        return graph
    out = list(graph)
    choices = [v for v in range(len(LEVEL_VALUES[level])) if v != graph[level]]
    out[level] = int(rng.choice(choices))
    for k in range(level + 1, LEVELS):
        out[k] = int(rng.integers(len(LEVEL_VALUES[k])))
    return tuple(out)


def make_pairs(seed: int, pairs_per_level: int, motivating_pairs: int,
               modality: str = "image") -> list[Pair]:
    """Benchmark pairs: `pairs_per_level` for each ground-truth level 0..LEVELS, plus two
    motivating-case subsets (introduction): surface-near/concept-far (same nuisance, the two samples
    differ only in one coarse level: the shape for images, the scene word for text) and
    surface-far/concept-same (identical graph, independent nuisance pushed far apart)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for level in range(LEVELS + 1):
        for _ in range(pairs_per_level):
            graph = random_graph(rng)
            a = Sample(graph, random_nuisance(rng))
            b = Sample(_differ_at(rng, graph, level), random_nuisance(rng))
            pairs.append(Pair(a, b, level, "random"))
    near_level = 1 if modality == "image" else 0
    for _ in range(motivating_pairs):
        graph, nuis = random_graph(rng), random_nuisance(rng)
        other = list(graph)
        other[near_level] = (graph[near_level] + 1 + int(rng.integers(len(
            LEVEL_VALUES[near_level]) - 1))) % len(LEVEL_VALUES[near_level])
        pairs.append(Pair(Sample(graph, nuis), Sample(tuple(other), nuis), near_level,
                          "surface_near_concept_far"))
    for _ in range(motivating_pairs):
        graph, n1 = random_graph(rng), random_nuisance(rng)
        n2 = random_nuisance(rng)
        n2 = Nuisance(lighting=2.0 - n1.lighting if abs(n1.lighting - 1) > 0.1 else 0.72,
                      jitter=(-n1.jitter[0], -n1.jitter[1]), size_jitter=2.0 - n1.size_jitter,
                      texture_seed=n2.texture_seed, template=(n1.template + 1 + int(
                          rng.integers(len(TEMPLATES) - 1))) % len(TEMPLATES),
                      synonym_choice=tuple((c + 1) % 3 for c in n1.synonym_choice))
        pairs.append(Pair(Sample(graph, n1), Sample(graph, n2), LEVELS,
                          "surface_far_concept_same"))
    return pairs


def make_triplets(seed: int, count: int) -> list[tuple[Sample, Sample, Sample]]:
    """2AFC triplets (anchor, closer, farther): the closer sample shares strictly more levels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        graph = random_graph(rng)
        far_level = int(rng.integers(0, LEVELS))
        near_level = int(rng.integers(far_level + 1, LEVELS + 1))
        anchor = Sample(graph, random_nuisance(rng))
        near = Sample(_differ_at(rng, graph, near_level), random_nuisance(rng))
        far = Sample(_differ_at(rng, graph, far_level), random_nuisance(rng))
        out.append((anchor, near, far))
    return out
