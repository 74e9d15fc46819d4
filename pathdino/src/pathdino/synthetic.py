"""Offline histology-like data: synthetic H&E textures, synthetic pyramidal slides, IHC tiles.

Shapes: images are uint8 [H, W, 3] RGB numpy arrays.

Synthetic tissue class k is an H&E-like texture: pink eosin stroma with fibres (a sinusoid along
angle theta) and purple hematoxylin nuclei (ellipses elongated along the fibres). Classes differ in
nucleus density, size, elongation and fibre frequency. Fibre angles are drawn from
[-bias, bias] degrees: this mimics an orientation bias of a training collection, which HistoRotate
is meant to remove (the paper's motivation: a tissue's class does not depend on its orientation).

The slide generator draws blob-shaped tissue regions of given classes on an off-white background,
so FPS (tissue segmentation, grid, sampling) and WSI-level search run end to end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

STROMA_LIGHT = np.array([236, 178, 214], np.float32)  # eosin, light
STROMA_DARK = np.array([214, 120, 180], np.float32)  # eosin, dense fibre
NUCLEUS = np.array([88, 50, 140], np.float32)  # hematoxylin
BACKGROUND = 246  # glass


@dataclass(frozen=True)
class TissueClass:
    nuclei_per_10k_px: float  # nuclei per 100x100 pixels
    nucleus_radius: float  # minor semi-axis, pixels
    elongation: float  # major / minor axis ratio
    fibre_period: float  # stroma fibre period, pixels


def tissue_classes(num_classes: int) -> list[TissueClass]:
    """A fixed family of `num_classes` distinguishable textures (class 0 .. num_classes-1)."""
    base = [
        TissueClass(6.0, 2.2, 3.0, 7.0),  # fibrous stroma, sparse spindle nuclei
        TissueClass(30.0, 2.6, 1.2, 12.0),  # dense round nuclei (lymphocyte-like)
        TissueClass(14.0, 3.6, 1.8, 9.0),  # large oval nuclei (tumour-like)
        TissueClass(3.0, 2.0, 1.0, 20.0),  # loose stroma, few nuclei
        TissueClass(20.0, 3.0, 2.6, 5.0),
        TissueClass(10.0, 4.5, 1.0, 15.0),
    ]
    if not 1 <= num_classes <= len(base):
        raise ValueError(f"num_classes must be in 1..{len(base)}, got {num_classes}")
    return base[:num_classes]


def render_texture(cls: TissueClass, height: int, width: int, theta_deg: float,
                   rng: np.random.Generator) -> np.ndarray:
    """One H&E-like texture of class `cls` whose fibres run at `theta_deg`.

    Returns:
        [height, width, 3] uint8.
    """
    theta = np.deg2rad(theta_deg)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)  # [H, W]
    along = xx * np.sin(theta) - yy * np.cos(theta)  # coordinate across the fibres
    wobble = ndimage.gaussian_filter(rng.normal(0, 6.0, (height, width)), 6)
    fibre = 0.5 + 0.5 * np.sin(2 * np.pi * (along + wobble) / cls.fibre_period)  # [H, W] in [0,1]
    img = STROMA_LIGHT + fibre[..., None] * (STROMA_DARK - STROMA_LIGHT)  # [H, W, 3]
    count = rng.poisson(cls.nuclei_per_10k_px * height * width / 1e4)
    minor = cls.nucleus_radius
    major = minor * cls.elongation
    reach = int(np.ceil(major)) + 1
    cos, sin = np.cos(theta), np.sin(theta)
    for cy, cx in zip(rng.uniform(0, height, count), rng.uniform(0, width, count)):
        y0, y1 = max(0, int(cy) - reach), min(height, int(cy) + reach + 1)
        x0, x1 = max(0, int(cx) - reach), min(width, int(cx) + reach + 1)
        if y1 <= y0 or x1 <= x0:
            continue
        dy, dx = yy[y0:y1, x0:x1] - cy, xx[y0:y1, x0:x1] - cx
        u, v = dx * cos + dy * sin, -dx * sin + dy * cos  # nucleus frame, u along the fibres
        scale = rng.uniform(0.8, 1.2)
        inside = (u / (major * scale)) ** 2 + (v / (minor * scale)) ** 2 <= 1.0  # [h, w]
        shade = NUCLEUS * rng.uniform(0.85, 1.15)
        img[y0:y1, x0:x1][inside] = shade
    img = ndimage.gaussian_filter(img, sigma=(0.7, 0.7, 0))  # optics blur
    img += rng.normal(0, 5.0, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def synthetic_patches(num_per_class: int, num_classes: int, size: int, bias_deg: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labelled texture patches.

    Returns:
        images [N, size, size, 3] uint8 and labels [N] int64, N = num_per_class * num_classes.
    """
    classes = tissue_classes(num_classes)
    images, labels = [], []
    for label, cls in enumerate(classes):
        for _ in range(num_per_class):
            theta = rng.uniform(-bias_deg, bias_deg)
            images.append(render_texture(cls, size, size, theta, rng))
            labels.append(label)
    return np.stack(images), np.asarray(labels, np.int64)


def ihc_image() -> np.ndarray:
    """scikit-image's bundled immunohistochemistry image (real IHC stain), [512, 512, 3] uint8."""
    from skimage import data

    return data.immunohistochemistry()


def ihc_windows(num: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`num` random size x size windows of the IHC image, [num, size, size, 3] uint8."""
    image = ihc_image()
    ys = rng.integers(0, image.shape[0] - size + 1, num)
    xs = rng.integers(0, image.shape[1] - size + 1, num)
    return np.stack([image[y:y + size, x:x + size] for y, x in zip(ys, xs)])


def ihc_labelled_tiles(size: int, num_classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping IHC tiles with stain pseudo-labels (terciles of mean DAB optical density).

    The bundled image has no annotation; colour deconvolution (skimage.color.rgb2hed) gives a
    real, image-derived target ("low / medium / high DAB") to probe embeddings on real pixels.
    """
    from PIL import Image
    from skimage.color import rgb2hed

    image = ihc_image()
    tile = min(size, 256)  # at most 256 px of the 512 px image per tile; upsampled to `size`
    stride = tile // 2  # half-overlapping tiles: more samples from one 512 x 512 image
    tiles, dab = [], []
    hed = rgb2hed(image)[..., 2]  # [512, 512] DAB density
    for y in range(0, image.shape[0] - tile + 1, stride):
        for x in range(0, image.shape[1] - tile + 1, stride):
            crop = image[y:y + tile, x:x + tile]
            if tile != size:
                crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))
            tiles.append(crop)
            dab.append(hed[y:y + tile, x:x + tile].mean())
    edges = np.quantile(dab, np.linspace(0, 1, num_classes + 1)[1:-1])
    return np.stack(tiles), np.digitize(dab, edges).astype(np.int64)


def _blob_mask(height: int, width: int, center: tuple[float, float], radius: float,
               rng: np.random.Generator) -> np.ndarray:
    """A smooth irregular blob: a disc with a low-frequency random boundary, [H, W] bool."""
    yy, xx = np.mgrid[0:height, 0:width]
    angle = np.arctan2(yy - center[0], xx - center[1])
    wobble = sum(rng.uniform(0.04, 0.12) * np.cos(k * angle + rng.uniform(0, 2 * np.pi))
                 for k in (2, 3, 5))
    return np.hypot(yy - center[0], xx - center[1]) <= radius * (1 + wobble)


def synthetic_slide_image(region_classes: list[int], size: int, num_classes: int,
                          bias_deg: float, rng: np.random.Generator
                          ) -> tuple[np.ndarray, np.ndarray]:
    """A slide of len(region_classes) tissue blobs on glass.

    Returns:
        image [size, size, 3] uint8 and label map [size, size] int64 (-1 = background).
    """
    classes = tissue_classes(num_classes)
    n = len(region_classes)
    grid = int(np.ceil(np.sqrt(n)))
    cell = size / grid
    image = np.full((size, size, 3), BACKGROUND, np.uint8)
    image = np.clip(image + rng.normal(0, 1.0, image.shape), 0, 255).astype(np.uint8)
    label_map = np.full((size, size), -1, np.int64)
    for i, k in enumerate(region_classes):
        center = ((i // grid + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell,
                  (i % grid + 0.5) * cell + rng.uniform(-0.05, 0.05) * cell)
        mask = _blob_mask(size, size, center, 0.4 * cell, rng)
        texture = render_texture(classes[k], size, size, rng.uniform(-bias_deg, bias_deg), rng)
        image[mask] = texture[mask]
        label_map[mask] = k
    return image, label_map


def write_synthetic_slides(root: str | Path, num_slides: int, num_classes: int, size: int,
                           regions: int, bias_deg: float, seed: int, levels: int = 3,
                           objective_power: float = 20.0, aperio: bool = False) -> Path:
    """Write slides/<i>.tif (or .svs with aperio=True; pyramidal) and labels.csv
    (`slide,label`) under `root`.

    Slide i has diagnosis i % num_classes; its `regions` blobs are of that class.
    objective_power: the scan magnification written into the file (FPS reads patches of
    output_patch_size * power / 20 level-0 pixels, so a 5x slide holds 4x fewer pixels per
    patch than a 20x one).
    """
    from .slide import write_pyramidal_tiff

    root = Path(root)
    (root / "slides").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = ["slide,label"]
    for i in range(num_slides):
        label = i % num_classes
        image, _ = synthetic_slide_image([label] * regions, size, num_classes, bias_deg, rng)
        name = f"slide_{i:03d}.{'svs' if aperio else 'tif'}"
        write_pyramidal_tiff(root / "slides" / name, image, levels=levels,
                             objective_power=objective_power, aperio=aperio,
                             tile=256 if size >= 1024 else 64)
        rows.append(f"{name},{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def write_pretraining_folder(root: str | Path, num_per_size: int, seed: int) -> Path:
    """The official TCGA layout at the paper's sizes: root/images_1024/*.jpg (synthetic H&E
    textures, 1024 x 1024) and root/images_512/*.jpg (IHC windows, 512 x 512)."""
    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    per_class = int(np.ceil(num_per_size / 4))
    big, _ = synthetic_patches(per_class, 4, 1024, 20.0, rng)
    for folder, images in (("images_1024", big[:num_per_size]),
                           ("images_512", ihc_windows(num_per_size, 512, rng))):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            Image.fromarray(image).save(root / folder / f"{i:06d}.jpg", quality=90)
    return root
