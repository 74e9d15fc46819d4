"""The learned parts of the official method, built on nerfstudio's own components:

- `SceneModel`: nerfacto field (hash grid + MLPs, per-image appearance embeddings, no scene
  contraction) with two proposal density fields, nerfstudio's ProposalNetworkSampler (warm-up and
  weight annealing as the official config), RGB renderer with background "last_sample",
  gradient scaling by distance^2, interlevel and distortion losses (`eyenerf_model.py`).
- `CorneaPoses`: per eye image a depth offset (metres, x1e3 into mm), x/y offsets (mm) and an
  so(3) rotation about the apex, all zero at start (official camera optimizer, mode "depth").
- `EyeRadiance`: camera rays -> cornea -> reflected rays -> scene radiance + iris texture.
Shapes: N rays, S samples per ray, M eye images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .cornea import CapShape, apex_positions, iris_texture_coords, so3_exp, trace_cornea
from .texture import IrisTexture, TextureArch


@dataclass(frozen=True)
class SceneArch:
    """Official EyeNeRFModelConfig values as defaults."""

    hidden_dim: int = 64
    hidden_dim_color: int = 64
    num_levels: int = 16
    max_res: int = 2048
    log2_hashmap_size: int = 19
    appearance_dim: int = 32
    proposal_samples: tuple[int, ...] = (256, 96)
    nerf_samples: int = 48
    proposal_hidden: int = 16
    proposal_log2_hashmap_size: int = 17
    proposal_num_levels: int = 5
    proposal_max_res: tuple[int, ...] = (128, 256)
    proposal_update_every: int = 5
    proposal_warmup: int = 5000
    anneal_slope: float = 10.0
    anneal_max_iters: int = 1000
    near: float = 0.05  # m
    far: float = 1000.0  # m
    scene_bound: float = 1.0  # m, aabb half size around the camera
    background: str = "last_sample"
    implementation: str = "torch"  # nerfstudio encodings: torch | tcnn


class SceneModel(nn.Module):
    """Radiance of the world seen in the corneas, queried along reflected rays (world frame, m)."""

    def __init__(self, arch: SceneArch, num_images: int) -> None:
        super().__init__()
        from nerfstudio.fields.density_fields import HashMLPDensityField
        from nerfstudio.fields.nerfacto_field import NerfactoField
        from nerfstudio.model_components.ray_samplers import ProposalNetworkSampler
        from nerfstudio.model_components.renderers import RGBRenderer

        self.arch = arch
        bound = arch.scene_bound
        aabb = torch.tensor([[-bound] * 3, [bound] * 3], dtype=torch.float32)
        self.field = NerfactoField(
            aabb, num_images=num_images, hidden_dim=arch.hidden_dim,
            num_levels=arch.num_levels, max_res=arch.max_res,
            log2_hashmap_size=arch.log2_hashmap_size, hidden_dim_color=arch.hidden_dim_color,
            appearance_embedding_dim=arch.appearance_dim, spatial_distortion=None,
            use_average_appearance_embedding=True, implementation=arch.implementation,
        )
        self.proposal_networks = nn.ModuleList(
            HashMLPDensityField(
                aabb, spatial_distortion=None, hidden_dim=arch.proposal_hidden,
                log2_hashmap_size=arch.proposal_log2_hashmap_size,
                num_levels=arch.proposal_num_levels, max_res=res, use_linear=False,
                implementation=arch.implementation,
            )
            for res in arch.proposal_max_res
        )

        def update_schedule(step: int) -> float:  # official: 1 -> update_every over warm-up
            return float(np.clip(np.interp(step, [0, arch.proposal_warmup],
                                           [0, arch.proposal_update_every]),
                                 1, arch.proposal_update_every))

        self.sampler = ProposalNetworkSampler(
            num_nerf_samples_per_ray=arch.nerf_samples,
            num_proposal_samples_per_ray=arch.proposal_samples,
            num_proposal_network_iterations=len(arch.proposal_max_res),
            single_jitter=True, update_sched=update_schedule,
        )
        self.renderer = RGBRenderer(background_color=arch.background)

    def before_step(self, step: int) -> None:
        """Proposal weight annealing (nerfstudio callback, Zip-NeRF's bias function)."""
        frac = float(np.clip(step / self.arch.anneal_max_iters, 0, 1))
        b = self.arch.anneal_slope
        self.sampler.set_anneal((b * frac) / ((b - 1) * frac + 1))

    def after_step(self, step: int) -> None:
        self.sampler.step_cb(step)

    def sampler_state(self) -> dict[str, float]:
        s = self.sampler
        return {"anneal": float(s._anneal), "since": int(s._steps_since_update),
                "step": int(s._step)}

    def load_sampler_state(self, state: dict) -> None:
        s = self.sampler
        s._anneal, s._steps_since_update, s._step = state["anneal"], state["since"], state["step"]

    def forward(
        self, origins: torch.Tensor, dirs: torch.Tensor, image_index: torch.Tensor
    ) -> dict[str, torch.Tensor | list]:
        """origins, dirs [N, 3] world frame (m, unit), image_index [N] -> "rgb" [N, 3] and, for
        the losses, "weights_list" / "ray_samples_list" (proposal levels + field level)."""
        from nerfstudio.cameras.rays import RayBundle
        from nerfstudio.field_components.field_heads import FieldHeadNames
        from nerfstudio.model_components.losses import scale_gradients_by_distance_squared

        n = origins.shape[0]
        bundle = RayBundle(
            origins=origins, directions=dirs, pixel_area=torch.ones(n, 1, device=dirs.device),
            camera_indices=image_index[:, None],
            nears=torch.full((n, 1), self.arch.near, device=dirs.device),
            fars=torch.full((n, 1), self.arch.far, device=dirs.device),
        )
        density_fns = [net.density_fn for net in self.proposal_networks]
        samples, weights_list, samples_list = self.sampler(bundle, density_fns=density_fns)
        out = self.field(samples)
        out = scale_gradients_by_distance_squared(out, samples)  # official: always on
        weights = samples.get_weights(out[FieldHeadNames.DENSITY])  # [N, S, 1]
        rgb = self.renderer(rgb=out[FieldHeadNames.RGB], weights=weights)  # [N, 3]
        return {"rgb": rgb, "weights_list": weights_list + [weights],
                "ray_samples_list": samples_list + [samples]}


class CorneaPoses(nn.Module):
    """Official pose refinement per eye image: depth offset [M] (m), x/y offsets [M, 2] (mm),
    rotation [M, 3] (so(3), about the apex). `rotation_init` [M, 3] is an optional fixed start."""

    def __init__(self, num_eyes: int) -> None:
        super().__init__()
        self.depth = nn.Parameter(torch.zeros(num_eyes))
        self.xy = nn.Parameter(torch.zeros(num_eyes, 2))
        self.rotation = nn.Parameter(torch.zeros(num_eyes, 3))
        self.register_buffer("rotation_init", torch.zeros(num_eyes, 3))

    def rotations(self, index: torch.Tensor) -> torch.Tensor:
        """[K] -> cornea-to-camera rotations [K, 3, 3]: exp(rotation) @ exp(rotation_init)."""
        return so3_exp(self.rotation[index]) @ so3_exp(self.rotation_init[index])


@dataclass
class EyeGeometry:
    """Per eye image, from the capture (buffers of EyeRadiance)."""

    centre_px: torch.Tensor  # [M, 2]
    depth_mm: torch.Tensor  # [M]
    fx: torch.Tensor  # [M]
    fy: torch.Tensor  # [M]
    c2w: torch.Tensor  # [M, 3, 4]
    width: int
    height: int


class EyeRadiance(nn.Module):
    """Observed colour of a cornea pixel = scene radiance along its reflected ray + T(iris)."""

    def __init__(self, geometry: EyeGeometry, scene: SceneArch, texture: TextureArch | None,
                 cap: CapShape) -> None:
        super().__init__()
        self.cap = cap
        self.width, self.height = geometry.width, geometry.height
        for name in ("centre_px", "depth_mm", "fx", "fy", "c2w"):
            self.register_buffer(name, getattr(geometry, name).float().clone())
        num_eyes = geometry.depth_mm.shape[0]
        self.scene = SceneModel(scene, num_eyes)
        # one texture net for both eyes, as the released code uses (texture_model_left)
        self.texture = IrisTexture(texture) if texture is not None else None
        self.poses = CorneaPoses(num_eyes)

    def apex_and_rotation(self, eye: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apex [K, 3] (mm, camera frame) and rotation [K, 3, 3] of eye images `eye` [K]."""
        size = torch.tensor([float(self.width), float(self.height)], device=eye.device)
        apex = apex_positions(self.centre_px[eye], self.depth_mm[eye], self.fx[eye], self.fy[eye],
                              size[0], size[1], self.poses.depth[eye], self.poses.xy[eye])
        return apex, self.poses.rotations(eye)

    def forward(self, dirs_cam: torch.Tensor, eye: torch.Tensor) -> dict:
        """dirs_cam [N, 3] OpenCV camera directions of cornea pixels, eye [N] eye-image index.

        Returns "hit" [N] (the ray meets the refined cap; the official drops the others), and
        for the K hit rays: "rgb" [K, 3], "reflection" [K, 3], "iris" [K, 3] (or 0), "coords"
        [K, 2] texture coordinates, plus the scene's weights/samples lists.
        """
        from .data import camera_to_world

        apex, rot = self.apex_and_rotation(eye)
        traced = trace_cornea(dirs_cam, apex, rot, self.cap)
        hit = traced["hit"]
        origins, dirs = camera_to_world(traced["points"][hit], traced["reflected"][hit],
                                        self.c2w[eye[hit]])
        scene = self.scene(origins, dirs, eye[hit])
        coords = iris_texture_coords(traced["eye_coords"][hit])
        iris = self.texture(coords) if self.texture is not None else torch.zeros_like(scene["rgb"])
        return {"hit": hit, "rgb": scene["rgb"] + iris, "reflection": scene["rgb"], "iris": iris,
                "eye_coords": traced["eye_coords"][hit], **scene}

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Official optimizer groups: fields (scene field + texture), proposal_networks, poses."""
        fields = list(self.scene.field.parameters())
        if self.texture is not None:
            fields += list(self.texture.parameters())
        proposals = list(self.scene.proposal_networks.parameters())
        return {"fields": fields, "proposal_networks": proposals,
                "camera_opt": list(self.poses.parameters())}
