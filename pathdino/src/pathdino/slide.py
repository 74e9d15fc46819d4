"""Whole-slide image access: pyramidal TIFF/SVS read tile by tile, synthetic slide writer.

Shapes: H W = pixels of one pyramid level; regions are returned as uint8 [h, w, 3] RGB.
Coordinates are (x, y) in level-0 pixels, as OpenSlide's `read_region` uses them.

`TiffSlide` decodes only the TIFF tiles (or strips) a region overlaps, so a gigapixel slide is never
loaded whole; its thumbnail is built as OpenSlide's `get_thumbnail` builds it. OpenSlide is used
instead when `backend="openslide"` (`pip install -e '.[openslide]'`: openslide-python and the
openslide-bin library wheel); the official FPS code reads slides with OpenSlide.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol, Self

import numpy as np

from .runtime import DataError, MissingPathError

MAX_LEVEL_PIXELS = 2**31  # a level larger than this is a corrupt header, not a slide
MAX_THUMBNAIL_SOURCE_PIXELS = 2**28  # the whole level read for a thumbnail (as OpenSlide does)


class SlideError(DataError):
    """A slide file that cannot be used (unreadable, not pyramidal, wrong pixel format)."""


class Slide(Protocol):
    level_dimensions: list[tuple[int, int]]  # (width, height) per level
    level_downsamples: list[float]
    objective_power: float

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]
                    ) -> np.ndarray: ...

    def get_thumbnail(self, max_size: int) -> tuple[np.ndarray, int]: ...

    def close(self) -> None: ...


def level_downsamples(dimensions: list[tuple[int, int]]) -> list[float]:
    """Per-level downsample as OpenSlide reports it: mean of the width and height ratios."""
    w0, h0 = dimensions[0]
    return [(w0 / w + h0 / h) / 2.0 for w, h in dimensions]


def best_level_for_downsample(downsamples: list[float], downsample: float) -> int:
    """OpenSlide's rule: the last level whose downsample is <= `downsample` (level 0 if none)."""
    for level in range(1, len(downsamples)):
        if downsample < downsamples[level]:
            return level - 1
    return len(downsamples) - 1


def openslide_thumbnail(slide: Slide, max_size: int) -> tuple[np.ndarray, int]:
    """Thumbnail as openslide-python's `get_thumbnail((max_size, max_size))` builds it (the
    official FPS code's input): read the whole best level for the downsample
    max(W0, H0) / max_size, then PIL `thumbnail` with Lanczos (longer side max_size, aspect kept).

    Returns:
        thumb: [h, w, 3] uint8; the level it was read from.
    """
    from PIL import Image

    w0, h0 = slide.level_dimensions[0]
    level = best_level_for_downsample(list(slide.level_downsamples),
                                      max(w0 / max_size, h0 / max_size))
    w, h = slide.level_dimensions[level]
    if w * h > MAX_THUMBNAIL_SOURCE_PIXELS:
        raise SlideError(f"level {level} ({w} x {h}) is the smallest level >= the thumbnail but "
                         "too large to read whole", "a pyramid with a level near 1-4k pixels")
    thumb = Image.fromarray(slide.read_region((0, 0), level, (w, h)))
    thumb.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return np.asarray(thumb), level


class _QuietTifffile:
    """Raise tifffile's logger to ERROR for a block (restored afterwards)."""

    def __enter__(self) -> None:
        import logging

        self._logger = logging.getLogger("tifffile")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc) -> None:
        self._logger.setLevel(self._level)


class TiffSlide:
    """Pyramidal TIFF (generic tiled pyramid, Aperio SVS) read with tifffile, region by region."""

    def __init__(self, path: str | Path, require_pyramid: bool = True) -> None:
        import tifffile

        self.path = Path(path)
        if not self.path.is_file():
            raise MissingPathError(f"slide not found: {self.path}", "check data_slide_root and "
                                   "labels.csv")
        self._tif = None
        try:  # tifffile's log lines about a corrupt file would precede our one-line error
            with _QuietTifffile():
                self._tif = tifffile.TiffFile(self.path)
                series = self._tif.series[0]
                self._pages = [lvl.keyframe for lvl in series.levels]
                for page in self._pages:  # parse each level's header now, inside the guard
                    _ = page.shape, page.dtype, page.is_tiled, page.dataoffsets
        except Exception as err:  # noqa: BLE001 - tifffile raises many types on corrupt files
            if self._tif is not None:
                self._tif.close()
            raise SlideError(f"cannot read {self.path} as a TIFF slide "
                             f"({type(err).__name__}: {err})", "a pyramidal TIFF/SVS") from None
        if require_pyramid and len(self._pages) < 2:
            self._tif.close()
            raise SlideError(f"{self.path} is not pyramidal (one resolution level)",
                             "write it with reduced-resolution levels or convert it with "
                             "vips tiffsave --pyramid --tile")
        for page in self._pages:
            shape = page.shape
            if len(shape) != 3 or shape[-1] not in (3, 4) or page.dtype != np.uint8:
                self._tif.close()
                raise SlideError(f"{self.path}: expected uint8 RGB(A) levels, got shape {shape} "
                                 f"dtype {page.dtype}", "an RGB whole-slide image")
            if shape[0] * shape[1] > MAX_LEVEL_PIXELS or min(shape[:2]) < 1:
                self._tif.close()
                raise SlideError(f"{self.path}: implausible level size {shape[1]} x {shape[0]}",
                                 "a corrupt TIFF header")
        self.level_dimensions = [(p.shape[1], p.shape[0]) for p in self._pages]
        self.level_downsamples = level_downsamples(self.level_dimensions)
        self.objective_power = self._read_objective_power()

    def _read_objective_power(self) -> float:
        """Aperio `AppMag = 20` in ImageDescription (as an integer, like the official code's
        int(openslide.objective-power)), else 20x (the official FPS default)."""
        desc = self._tif.pages[0].description or ""
        for part in desc.replace("\n", "|").split("|"):
            key, _, value = part.partition("=")
            if key.strip() == "AppMag":
                try:
                    return float(int(float(value)))
                except ValueError:
                    break
        return 20.0

    def _segment(self, page, index: int) -> np.ndarray:
        """Decode TIFF tile/strip `index` of `page` -> [h, w, C] uint8."""
        fh = self._tif.filehandle
        fh.seek(page.dataoffsets[index])
        data = fh.read(page.databytecounts[index])
        try:
            segment, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        except Exception as err:  # noqa: BLE001 - codecs raise many types
            raise SlideError(f"{self.path}: cannot decode tile {index} ({type(err).__name__}: "
                             f"{err})", "a truncated or corrupted slide file") from None
        if segment is None:
            raise SlideError(f"{self.path}: tile {index} is empty or truncated",
                             "a truncated or corrupted slide file")
        return segment[0]  # [h, w, C]

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]
                    ) -> np.ndarray:
        """Pixels of `level` in the box at level-0 `location` (x, y) of `size` (w, h) level pixels.

        Returns:
            [h, w, 3] uint8 RGB; outside the image is white (255), like OpenSlide's background.
        Raises:
            SlideError when the file's tiles cannot be read (truncated or corrupted file).
        """
        try:
            return self._read_region(location, level, size)
        except SlideError:
            raise
        except Exception as err:  # noqa: BLE001 - tifffile/numpy/zlib on corrupt tiles
            raise SlideError(f"{self.path}: cannot read level {level} at {tuple(location)} "
                             f"({type(err).__name__}: {err})", "a truncated or corrupted slide "
                             "file") from None

    def _read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]
                     ) -> np.ndarray:
        page = self._pages[level]
        scale = self.level_downsamples[level]
        x0, y0 = int(location[0] / scale), int(location[1] / scale)
        w, h = int(size[0]), int(size[1])
        out = np.full((h, w, 3), 255, np.uint8)
        height, width = page.shape[:2]
        if page.is_tiled:
            th, tw = page.tilelength, page.tilewidth
        else:
            th, tw = page.rowsperstrip, width
            th = min(th, height)
        cols = math.ceil(width / tw)
        ty0, ty1 = max(0, y0) // th, (min(height, y0 + h) - 1) // th
        tx0, tx1 = max(0, x0) // tw, (min(width, x0 + w) - 1) // tw
        for ty in range(ty0, ty1 + 1):
            for tx in range(tx0, tx1 + 1):
                seg = self._segment(page, ty * cols + tx)[..., :3]  # [th, tw, 3]
                sy, sx = ty * th, tx * tw
                # overlap of the tile [sy, sy+th) x [sx, sx+tw) with the request
                ay0, ay1 = max(sy, y0), min(sy + seg.shape[0], y0 + h, height)
                ax0, ax1 = max(sx, x0), min(sx + seg.shape[1], x0 + w, width)
                if ay1 <= ay0 or ax1 <= ax0:
                    continue
                tile = seg[ay0 - sy:ay1 - sy, ax0 - sx:ax1 - sx]
                out[ay0 - y0:ay1 - y0, ax0 - x0:ax1 - x0] = tile
        return out

    def get_thumbnail(self, max_size: int = 1024) -> tuple[np.ndarray, int]:
        return openslide_thumbnail(self, max_size)

    def close(self) -> None:
        self._tif.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class OpenSlideSlide:
    """Same interface on top of openslide-python (optional)."""

    def __init__(self, path: str | Path) -> None:
        try:
            import openslide
        except ImportError as err:
            raise ImportError("slide_backend=openslide needs `pip install -e '.[openslide]'` and "
                              "the OpenSlide system library") from err
        if not Path(path).is_file():
            raise MissingPathError(f"slide not found: {path}", "check data_slide_root and "
                                   "labels.csv")
        try:
            self._slide = openslide.OpenSlide(str(path))
        except Exception as err:  # noqa: BLE001 - OpenSlideError, OpenSlideUnsupportedFormatError
            raise SlideError(f"OpenSlide cannot read {path} ({type(err).__name__}: {err})",
                             "a slide format OpenSlide supports") from None
        self.level_dimensions = list(self._slide.level_dimensions)
        self.level_downsamples = list(self._slide.level_downsamples)
        try:  # official: int(properties['openslide.objective-power']), 20 when that fails
            self.objective_power = float(int(self._slide.properties["openslide.objective-power"]))
        except (KeyError, ValueError):
            self.objective_power = 20.0

    def read_region(self, location, level, size) -> np.ndarray:
        """As the official FPS code: OpenSlide's RGBA region converted to RGB."""
        try:
            return np.asarray(self._slide.read_region(location, level, size).convert("RGB"))
        except Exception as err:  # noqa: BLE001 - OpenSlideError on corrupt tiles
            raise SlideError(f"OpenSlide cannot read level {level} at {tuple(location)} "
                             f"({type(err).__name__}: {err})", "a truncated or corrupted slide "
                             "file") from None

    def get_thumbnail(self, max_size: int = 1024) -> tuple[np.ndarray, int]:
        """OpenSlide's own get_thumbnail (the official FPS input)."""
        w0, h0 = self.level_dimensions[0]
        level = self._slide.get_best_level_for_downsample(max(w0 / max_size, h0 / max_size))
        return np.asarray(self._slide.get_thumbnail((max_size, max_size))), level

    def close(self) -> None:
        self._slide.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_slide(path: str | Path, backend: str = "tifffile") -> TiffSlide | OpenSlideSlide:
    """Open a pyramidal slide with the chosen backend (clear SlideError when it is unusable)."""
    if backend == "openslide":
        return OpenSlideSlide(path)
    return TiffSlide(path)


def write_pyramidal_tiff(path: str | Path, image: np.ndarray, levels: int = 3, tile: int = 64,
                         objective_power: float = 20.0, aperio: bool = False) -> None:
    """Write `image` [H, W, 3] uint8 as a tiled pyramid (level l = 2**l subsampling, zlib).

    Levels are consecutive TIFF directories, which both tifffile and OpenSlide read as a pyramid
    (OpenSlide sees SubIFD levels as a one-level image).
    aperio=False: generic tiled TIFF (reduced-resolution pages after the full one); the
        description's `AppMag` is read by `TiffSlide` only (OpenSlide reports no objective
        power for generic TIFFs, so 20x is assumed there, as in the official code).
    aperio=True: the Aperio SVS layout (baseline, a stripped thumbnail page, then the levels, each
        with an `Aperio ...` description): OpenSlide's aperio reader and tifffile's SVS series
        both read it, including `AppMag` as the objective power.
    """
    import tifffile

    assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8, image.shape
    assert tile % 16 == 0, "TIFF tiles must be multiples of 16"
    height, width = image.shape[:2]
    head = "Aperio Image Library (pathdino synthetic)\n" if aperio else "synthetic slide|"
    kw = {"compression": "zlib", "photometric": "rgb", "metadata": None}
    with tifffile.TiffWriter(path) as writer:
        writer.write(image, tile=(tile, tile), **kw,
                     description=f"{head}{width}x{height} ({tile}x{tile}) "
                                 f"|AppMag = {objective_power:g}")
        if aperio:
            step = max(1, math.ceil(max(height, width) / 256))
            writer.write(np.ascontiguousarray(image[::step, ::step]), **kw,
                         description=f"{head}{width}x{height} -> thumbnail")
        for level in range(1, levels):
            step = 2**level
            # box-filter downsampling, as scanners' pyramids are built
            h, w = height // step * step, width // step * step
            small = image[:h, :w].reshape(h // step, step, w // step, step, 3).mean((1, 3))
            extra = ({"description": f"{head}{width}x{height} -> {w // step}x{h // step}"}
                     if aperio else {"subfiletype": 1})
            writer.write(small.round().astype(np.uint8), tile=(tile, tile), **kw, **extra)
