"""Rendering the observed cornea pixels: camera ray -> cornea cap -> reflected ray -> scene
radiance field (volume rendering with nerfstudio's sampler and renderer) + iris texture.

Shapes: N rays, S samples per ray.
"""

from __future__ import annotations

import torch

from .geometry import intersect_cornea, iris_coords, refine_pose, reflect
from .model import IrisTexture, SceneField


def render_field(
    field: SceneField,
    origins: torch.Tensor,
    dirs: torch.Tensor,
    near: float,
    far: float,
    n_samples: int,
    stratified: bool,
) -> torch.Tensor:
    """Volume-render the scene field along rays [N, 3] -> rgb [N, 3] (black background)."""
    from nerfstudio.cameras.rays import RayBundle
    from nerfstudio.model_components.ray_samplers import UniformSampler
    from nerfstudio.model_components.renderers import RGBRenderer

    n = origins.shape[0]
    bundle = RayBundle(
        origins=origins,
        directions=dirs,
        pixel_area=torch.ones(n, 1, device=dirs.device),
        nears=torch.full((n, 1), near, device=dirs.device),
        fars=torch.full((n, 1), far, device=dirs.device),
    )
    sampler = UniformSampler(num_samples=n_samples, train_stratified=stratified)
    sampler.train(stratified)
    samples = sampler(bundle)
    positions = samples.frustums.get_positions()  # [N, S, 3]
    density, rgb = field(positions, samples.frustums.directions)  # [N, S, 1], [N, S, 3]
    weights = samples.get_weights(density)  # [N, S, 1], alpha compositing
    return RGBRenderer(background_color="black")(rgb=rgb, weights=weights)


def render_cornea_rays(
    field: SceneField,
    texture: IrisTexture | None,
    dirs: torch.Tensor,
    c: torch.Tensor,
    g: torch.Tensor,
    eye: torch.Tensor,
    delta: torch.Tensor | None,
    near: float,
    far: float,
    n_samples: int,
    stratified: bool,
) -> dict[str, torch.Tensor]:
    """Predicted colour of camera rays through cornea pixels.

    Args:
        dirs: [N, 3] unit camera-ray directions (camera at the origin).
        c, g: [N, 3] initial cornea pose of each ray's eye; delta [N, 6] its correction or None.
        eye: [N] eye index (selects the iris texture).
    Returns:
        "rgb" [N, 3] = reflection + iris (Sec. 3.2), "reflection", "iris", "uv" [N, 2], "hit" [N].
    """
    if delta is not None:
        c, g = refine_pose(c, g, delta)
    hit = intersect_cornea(torch.zeros_like(dirs), dirs, c, g)
    refl_dirs = reflect(dirs, hit["normals"])
    reflection = render_field(field, hit["points"], refl_dirs, near, far, n_samples, stratified)
    uv = iris_coords(hit["points"], c, g)
    iris = texture(uv, eye) if texture is not None else torch.zeros_like(reflection)
    return {
        "rgb": reflection + iris,
        "reflection": reflection,
        "iris": iris,
        "uv": uv,
        "hit": hit["hit"],
    }
