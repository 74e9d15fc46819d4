"""FPS: fast patch selection for whole-slide images (Sec. 3.1 of the paper, official `FPS code/`).

Steps (official `process_wsi` in `FPS code/FPS_helper.py`):
1. Thumbnail: OpenSlide's `get_thumbnail((1024, 1024))` (Lanczos, longer side 1024) ->
   `clean_thumbnail`: pixels whose RGB std < 5 (grey/glass) and pixels whose 30 x 30 box mean of
   the HSD chroma c_y is < 0.05 (not stained) become white. The box filter is OpenCV's
   `filter2D` default: anchor at the kernel centre (15, 15) and reflect-101 borders.
2. Tissue mask = non-white pixels. Each tissue component (OpenCV outer contour) is tiled on the
   mask with cells of the patch size; cells with tissue fraction >= tissue_threshold are
   candidates, in OpenCV's contour order (last component in raster order first), x outer, y inner.
3. Greedy spatial thinning in that order: keep a candidate only if it is >= 2 cells from every
   kept one.
4. Density-proportional sampling of `num_patches` locations with a kernel-density estimate
   (bandwidth 0.1 mask pixels, sklearn KernelDensity.sample), which keeps the spatial
   distribution of the tissue.
5. Scale to level-0 coordinates (official: by the integer part of level-0 size / mask size);
   patches are read at level 0 with side int((objective_power / 20) * output_patch_size), i.e.
   `output_patch_size` pixels at 20x.

Shapes: thumbnail [h, w, 3] uint8, mask [h, w] bool; points are (x, y).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import ndimage

from .slide import Slide, SlideError


def rgb_to_hsd(rgb: np.ndarray) -> np.ndarray:
    """Hue-saturation-density transform (optical density, chroma) of RGB in [0, 1].

    Args:
        rgb: [..., 3] float in [0, 1] (float32 stays float32, as in the official cleaning).
    Returns:
        [..., 3]: D (mean optical density), c_x, c_y.
    """
    eps = np.finfo(np.float64).eps
    rgb = np.asarray(rgb, dtype=np.result_type(rgb, np.float32))
    x = np.where(rgb == 0.0, rgb.dtype.type(eps), rgb)
    od = -np.log(x)  # optical density per channel
    density = od.mean(-1)
    density = np.where(density == 0.0, density.dtype.type(eps), density)
    c_x = od[..., 0] / density - 1.0
    c_y = (od[..., 1] - od[..., 2]) / (np.sqrt(3.0) * density)
    return np.stack([density, c_x, c_y], -1)


def clean_thumbnail(thumb: np.ndarray, std_threshold: float = 5.0, chroma_threshold: float = 0.05,
                    kernel: int = 30) -> np.ndarray:
    """White out glass, grey pen/shadow and unstained pixels (official `clean_thumbnail`).

    Args:
        thumb: [h, w, 3] uint8.
        kernel: side of the box filter over c_y (30 at a 1024 px thumbnail).
    Returns:
        [h, w, 3] uint8 with background set to 255.
    """
    out = thumb.copy()
    out[thumb.std(axis=2) < std_threshold] = 255
    c_y = rgb_to_hsd(out.astype(np.float32) / np.float32(255.0))[..., 2]  # float32 as official
    # cv2.filter2D(c_y, -1, ones(k, k) / k^2): window [i - k//2, i + k - 1 - k//2] (scipy's
    # origin 0 for even and odd k) and BORDER_REFLECT_101 = scipy's "mirror" (not "reflect")
    c_y_mean = ndimage.uniform_filter(c_y, size=kernel, mode="mirror")
    out[c_y_mean < chroma_threshold] = 255
    return out


def tissue_mask(thumb: np.ndarray, kernel: int = 30) -> np.ndarray:
    """[h, w] bool: True where the cleaned thumbnail is not pure white."""
    cleaned = clean_thumbnail(thumb, kernel=kernel)
    return cleaned.mean(axis=2) != 255


def grid_candidates(mask: np.ndarray, cell_h: int, cell_w: int, tissue_threshold: float
                    ) -> list[tuple[int, int, float]]:
    """Cells over each tissue component's bounding box with enough tissue, in the official order.

    Components are 8-connected with holes filled (OpenCV RETR_EXTERNAL outer contours: a blob in
    another's hole is not a contour of its own). `cv2.findContours` lists the contours in reverse
    order of their first pixel in a raster scan; scipy labels components in raster order, so the
    official order is the labels reversed (checked against OpenCV 4.14 and 5.0 on 300 random
    masks). Within a box, x is the outer loop and y the inner one, and, as in the official loop,
    the last partial column/row of a box is not visited.

    Returns:
        (x, y, tissue_fraction) of the kept cells' top-left corners, in mask pixels.
    """
    filled = ndimage.binary_fill_holes(mask)
    labels, _ = ndimage.label(filled, structure=np.ones((3, 3)))
    kept = []
    for box in reversed(ndimage.find_objects(labels)):
        y, x = box[0].start, box[1].start
        h, w = box[0].stop - y, box[1].stop - x
        if w < cell_w or h < cell_h:
            continue
        for i in range(x, x + w - cell_w, cell_w):
            for j in range(y, y + h - cell_h, cell_h):
                fraction = float(np.count_nonzero(mask[j:j + cell_h, i:i + cell_w])) / (
                    cell_h * cell_w)
                if fraction >= tissue_threshold:
                    kept.append((i, j, fraction))
    return kept


def thin_points(points: list[tuple[int, int]], min_distance: float) -> list[tuple[int, int]]:
    """Greedy filter: keep a point if it lies >= min_distance from all points kept before."""
    kept: list[tuple[int, int]] = []
    for p in points:
        if all(np.hypot(p[0] - q[0], p[1] - q[1]) >= min_distance for q in kept):
            kept.append(p)
    return kept


def kde_sample(points: np.ndarray, num: int, bandwidth: float,
               rng: np.random.Generator | np.random.RandomState) -> np.ndarray:
    """Draw `num` points from a Gaussian KDE of `points` [N, 2] (sklearn KernelDensity.sample).

    As sklearn: u ~ U(0, 1)^num picks data points floor(u N) (with replacement), then
    N(point, bandwidth^2) noise is added; so dense tissue areas contribute proportionally more
    patches. With a `np.random.RandomState` seeded like numpy's global state the draws equal the
    official `KernelDensity(bandwidth=0.1).fit(points).sample(num)`. Fewer points than `num`:
    all of them are returned unchanged (official).
    """
    if len(points) <= num:
        return points.astype(np.float64)
    u = rng.uniform(0.0, 1.0, size=num)
    idx = (u * points.shape[0]).astype(np.int64)
    return np.atleast_2d(rng.normal(points[idx].astype(np.float64), bandwidth))


@dataclass
class Selection:
    coords: list[tuple[int, int]]  # level-0 (x, y) top-left of each patch
    patch_size: int  # level-0 side of each patch
    thumbnail: np.ndarray  # [h, w, 3] uint8
    mask: np.ndarray  # [h, w] bool
    thumb_scale: float  # level-0 pixels per thumbnail pixel
    num_candidates: int  # cells passing the tissue threshold
    seconds: float  # wall time of the selection (thumbnail + mask + sampling)


def _mask_setup(slide: Slide, output_patch_size: int, thumbnail_size: int):
    thumb, _ = slide.get_thumbnail(thumbnail_size)
    width0, height0 = slide.level_dimensions[0]
    kernel = max(3, round(30 * max(thumb.shape[:2]) / 1024))  # 30 px at 1024 (official)
    mask = tissue_mask(thumb, kernel=kernel)
    patch_size = int(slide.objective_power / 20.0 * output_patch_size)  # level-0 side (FPS.py)
    scale_x, scale_y = width0 / thumb.shape[1], height0 / thumb.shape[0]
    return thumb, mask, patch_size, scale_x, scale_y


CoordMode = Literal["official", "exact"]


def fps_select(slide: Slide, num_patches: int = 30, tissue_threshold: float = 0.9,
               output_patch_size: int = 1000, thumbnail_size: int = 1024,
               rng: np.random.Generator | np.random.RandomState | None = None,
               coords: CoordMode = "official") -> Selection:
    """FPS patch selection (steps 1-5 above) -> `Selection` with `num_patches` coordinates.

    coords: "official" scales mask coordinates to level 0 by int(W0 / w_mask) and
        int(H0 / h_mask), as the released code does (a slide 97.7x its thumbnail is scaled by 97,
        so patches drift towards the origin by up to ~2 % of the slide); "exact" uses the float
        ratios.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    start = time.perf_counter()
    thumb, mask, patch_size, scale_x, scale_y = _mask_setup(slide, output_patch_size,
                                                            thumbnail_size)
    width0, height0 = slide.level_dimensions[0]
    # official: int((mask_side / slide_side) * patch_side), with the 20x side as a float
    side_20x = slide.objective_power / 20.0 * output_patch_size
    cell_h = max(1, int((mask.shape[0] / height0) * side_20x))
    cell_w = max(1, int((mask.shape[1] / width0) * side_20x))
    candidates = grid_candidates(mask, cell_h, cell_w, tissue_threshold)
    if not candidates:
        raise SlideError(f"no tissue patch found: {int(mask.sum())} tissue pixels in the "
                         f"{mask.shape[1]}x{mask.shape[0]} thumbnail, no {cell_w}x{cell_h} cell "
                         f"with "
                         f">= {tissue_threshold:.0%} tissue (lower fps_tissue_threshold?)")
    thinned = thin_points([(x, y) for x, y, _ in candidates], min_distance=2 * cell_h)
    sampled = kde_sample(np.asarray(thinned, np.float64).reshape(-1, 2), num_patches, 0.1, rng)
    if coords == "official":
        factor_x, factor_y = int(width0 / mask.shape[1]), int(height0 / mask.shape[0])
    else:
        factor_x, factor_y = scale_x, scale_y
    level0 = [(int(x * factor_x), int(y * factor_y)) for x, y in sampled]
    return Selection(level0, patch_size, thumb, mask, scale_x, len(candidates),
                     time.perf_counter() - start)


def exhaustive_tiles(slide: Slide, tissue_threshold: float = 0.9, output_patch_size: int = 1000,
                     thumbnail_size: int = 1024) -> Selection:
    """Baseline: every non-overlapping level-0 tile whose tissue fraction >= tissue_threshold."""
    start = time.perf_counter()
    thumb, mask, patch_size, scale_x, scale_y = _mask_setup(slide, output_patch_size,
                                                            thumbnail_size)
    width0, height0 = slide.level_dimensions[0]
    coords = []
    for y in range(0, height0 - patch_size + 1, patch_size):
        for x in range(0, width0 - patch_size + 1, patch_size):
            cell = mask[int(y / scale_y):int(np.ceil((y + patch_size) / scale_y)),
                        int(x / scale_x):int(np.ceil((x + patch_size) / scale_x))]
            if cell.size and cell.mean() >= tissue_threshold:
                coords.append((x, y))
    if not coords:
        raise SlideError(f"no tissue tile with >= {tissue_threshold:.0%} tissue found")
    return Selection(coords, patch_size, thumb, mask, scale_x, len(coords),
                     time.perf_counter() - start)


def read_patches(slide: Slide, selection: Selection) -> np.ndarray:
    """Read the selected level-0 patches -> [N, P, P, 3] uint8 (P = selection.patch_size)."""
    size = (selection.patch_size, selection.patch_size)
    if not selection.coords:
        return np.zeros((0, *size, 3), np.uint8)
    return np.stack([slide.read_region(xy, 0, size) for xy in selection.coords])
