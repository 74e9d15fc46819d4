"""The method as a nerfstudio plugin, as the official code ships it (`ns-train cornea`):

    ns-train eye-radiance --data /path/to/capture                 # the official settings
    ns-train eye-radiance-tiny --data /path/to/capture --machine.device-type cpu --vis tensorboard

The data manager reads an official capture folder with `eye_radiance.data` and yields camera rays
of random cornea pixels (camera index = eye image); the model (`EyeRadianceNSModel`) wraps the
same `EyeRadiance` module as train.py: cornea tracing, reflection, nerfacto field with proposal
sampling, iris texture, losses. Nothing is downloaded at start-up: unlike nerfstudio's own models,
which build torchmetrics' LPIPS with pretrained AlexNet weights (a download, so `ns-train` stops
offline), LPIPS is built lazily for evaluation images from `lpips_backbone` (a torchvision AlexNet
state dict) or with a random backbone, reported as `lpips_random_backbone`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Tuple, Type

import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import DataManager, DataManagerConfig
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.callbacks import (
    TrainingCallback,
    TrainingCallbackAttributes,
    TrainingCallbackLocation,
)
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification
from torch.nn import Parameter

from .cornea import cap_shape
from .data import CV_TO_GL, Capture, load_capture
from .losses import field_losses, reconstruction_loss, rotation_prior_loss
from .model import EyeGeometry, EyeRadiance, SceneArch
from .texture import TextureArch


class _EyeDataset:
    """What nerfstudio's pipeline reads from a dataset: length, scene box, metadata."""

    def __init__(self, capture: Capture, scene_bound: float) -> None:
        self.capture = capture
        self.scene_box = SceneBox(aabb=torch.tensor([[-scene_bound] * 3, [scene_bound] * 3]))
        self.metadata = {"eye_geometry": EyeGeometry(
            capture.centre_px, capture.depth_mm, capture.fx, capture.fy, capture.c2w,
            capture.width, capture.height)}

    def __len__(self) -> int:
        return self.capture.num_eyes


@dataclass
class EyeDataManagerConfig(DataManagerConfig):
    _target: Type = field(default_factory=lambda: EyeDataManager)
    train_num_rays_per_batch: int = 4096
    eval_num_rays_per_batch: int = 4096
    used_eye: Literal["both", "left_eye", "right_eye"] = "both"
    erode_px: int = 13
    cornea: Literal["ellipsoid", "sphere"] = "ellipsoid"
    tiff_scale: Literal["dtype", "official"] = "official"
    on_bad_frame: Literal["skip", "error"] = "skip"
    scene_bound: float = 1.0


class EyeDataManager(DataManager):
    """Random cornea pixels of the official capture (train split; eval = transforms_test)."""

    config: EyeDataManagerConfig

    def __init__(self, config: EyeDataManagerConfig, device="cpu", test_mode="val",
                 world_size: int = 1, local_rank: int = 0, **kwargs) -> None:
        self.config, self.device, self.test_mode = config, device, test_mode
        assert config.data is not None, "--data <official capture folder> is required"
        read = dict(used_eye=config.used_eye, erode_px=config.erode_px,
                    cap=cap_shape(config.cornea), on_bad_frame=config.on_bad_frame,
                    tiff_scale=config.tiff_scale)
        self.train_capture = load_capture(config.data, "train", **read)
        self.eval_capture = load_capture(config.data, "test", **read)
        self.train_dataset = _EyeDataset(self.train_capture, config.scene_bound)
        self.eval_dataset = _EyeDataset(self.eval_capture, config.scene_bound)
        cap = self.train_capture
        self.cameras = Cameras(
            camera_to_worlds=cap.c2w, fx=cap.fx[:, None], fy=cap.fy[:, None],
            cx=cap.width / 2.0, cy=cap.height / 2.0, width=cap.width, height=cap.height,
            camera_type=CameraType.PERSPECTIVE)
        self.train_dataparser_outputs = DataparserOutputs(
            image_filenames=[Path(p) for p in cap.image_paths], cameras=self.cameras,
            scene_box=self.train_dataset.scene_box,
            mask_filenames=[Path(p) for p in cap.mask_paths])
        self.generator = torch.Generator().manual_seed(0)
        super().__init__()

    def _batch(self, capture: Capture, num: int) -> Tuple[RayBundle, Dict]:
        idx = torch.randperm(len(capture), generator=self.generator)[:num]
        eye = capture.eye[idx]
        dirs_cv = capture.camera_dirs(idx)
        dirs_cv = dirs_cv / dirs_cv.norm(dim=-1, keepdim=True)
        rot = capture.c2w[eye, :, :3] @ CV_TO_GL  # camera (OpenCV) -> world
        dirs = torch.einsum("nij,nj->ni", rot, dirs_cv)
        bundle = RayBundle(origins=capture.c2w[eye, :, 3], directions=dirs,
                           pixel_area=torch.ones(len(idx), 1), camera_indices=eye[:, None])
        batch = {"image": capture.rgb[idx], "indices": torch.cat([eye[:, None],
                                                                   capture.pixels[idx]], 1)}
        return bundle.to(self.device), {k: v.to(self.device) for k, v in batch.items()}

    def next_train(self, step: int) -> Tuple[RayBundle, Dict]:
        self.train_count += 1
        return self._batch(self.train_capture, self.config.train_num_rays_per_batch)

    def next_eval(self, step: int) -> Tuple[RayBundle, Dict]:
        self.eval_count += 1
        return self._batch(self.eval_capture, self.config.eval_num_rays_per_batch)

    def next_eval_image(self, step: int) -> Tuple[Cameras, Dict]:
        """A crop around one eye (cycling through the eye images): its camera (with the eye
        index attached, as the official attaches `order` to Cameras) and image/mask."""
        from .data import read_image

        cap = self.eval_capture
        k = step % cap.num_eyes
        pix = cap.pixels[cap.eye == k]
        u0, v0 = pix.min(0).values.tolist()
        u1, v1 = (pix.max(0).values + 1).tolist()
        image = torch.from_numpy(read_image(Path(cap.image_paths[k]), self.config.tiff_scale))
        mask = torch.zeros(cap.height, cap.width, 1, dtype=torch.bool)
        mask[pix[:, 1], pix[:, 0]] = True
        camera = Cameras(camera_to_worlds=cap.c2w[k:k + 1], fx=cap.fx[k:k + 1, None],
                         fy=cap.fy[k:k + 1, None], cx=cap.width / 2.0 - u0,
                         cy=cap.height / 2.0 - v0, width=u1 - u0, height=v1 - v0,
                         camera_type=CameraType.PERSPECTIVE).to(self.device)
        camera.eye_index = k
        batch = {"image": image[v0:v1, u0:u1], "mask": mask[v0:v1, u0:u1]}
        return camera, batch

    def get_train_rays_per_batch(self) -> int:
        return self.config.train_num_rays_per_batch

    def get_eval_rays_per_batch(self) -> int:
        return self.config.eval_num_rays_per_batch

    def get_datapath(self) -> Path:
        return Path(self.config.data)

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {}


@dataclass
class EyeRadianceNSModelConfig(ModelConfig):
    """Defaults = the official EyeNeRFModelConfig with the README's run flags."""

    _target: Type = field(default_factory=lambda: EyeRadianceNSModel)
    enable_collider: bool = False  # near/far apply to the reflected rays, set below
    scene: SceneArch = field(default_factory=SceneArch)
    use_texture_field: bool = True
    texture_num_levels: int = 16
    texture_log2_hashmap_size: int = 15
    rot_loss_mult: float = 0.1
    rot_angles: int = 20
    interlevel_loss_mult: float = 1.0
    distortion_loss_mult: float = 0.002
    cornea: Literal["ellipsoid", "sphere"] = "ellipsoid"
    lpips_backbone: str = ""


class EyeRadianceNSModel(Model):
    config: EyeRadianceNSModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        geometry = self.kwargs["metadata"]["eye_geometry"]
        impl = self.config.scene.implementation
        if impl == "tcnn":  # as nerfstudio's encodings: fall back to torch without tiny-cuda-nn
            try:
                import tinycudann  # noqa: F401
            except ImportError:
                impl = "torch"
        texture = (TextureArch(num_levels=self.config.texture_num_levels,
                               log2_hashmap_size=self.config.texture_log2_hashmap_size,
                               implementation=impl)
                   if self.config.use_texture_field else None)
        self.eye = EyeRadiance(geometry, self.config.scene, texture, cap_shape(self.config.cornea))
        self._lpips = None

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return self.eye.param_groups()

    def get_training_callbacks(self, attrs: TrainingCallbackAttributes) -> List[TrainingCallback]:
        before, after = TrainingCallbackLocation.BEFORE_TRAIN_ITERATION, \
            TrainingCallbackLocation.AFTER_TRAIN_ITERATION
        return [TrainingCallback([before], self.eye.scene.before_step, update_every_num_iters=1),
                TrainingCallback([after], self.eye.scene.after_step, update_every_num_iters=1)]

    def get_outputs(self, ray_bundle: RayBundle) -> Dict:
        eye = ray_bundle.camera_indices.reshape(-1).long()
        rot = self.eye.c2w[eye, :, :3] @ CV_TO_GL.to(ray_bundle.directions)
        dirs_cv = torch.einsum("nji,nj->ni", rot, ray_bundle.directions.reshape(-1, 3))
        out = self.eye(dirs_cv, eye)
        hit = out["hit"]
        rgb = torch.zeros(hit.shape[0], 3, device=hit.device, dtype=out["rgb"].dtype)
        rgb[hit] = out["rgb"]
        result = {"rgb": rgb, "hit": hit[:, None].float()}
        if self.training:
            result.update(rgb_hit=out["rgb"], eye_coords=out["eye_coords"],
                          weights_list=out["weights_list"],
                          ray_samples_list=out["ray_samples_list"])
        return result

    def get_outputs_for_camera(self, camera: Cameras, obb_box=None) -> Dict[str, torch.Tensor]:
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
        bundle.camera_indices = torch.full_like(bundle.camera_indices,
                                                getattr(camera, "eye_index", 0))
        return self.get_outputs_for_camera_ray_bundle(bundle)

    def get_metrics_dict(self, outputs, batch) -> Dict:
        hit = outputs["hit"][:, 0] > 0
        mse = ((outputs["rgb"][hit] - batch["image"][hit]) ** 2).mean()
        metrics = {"psnr": -10 * torch.log10(mse.clamp(min=1e-10)),
                   "hit_fraction": hit.float().mean()}
        if self.training:
            metrics.update(field_losses(outputs["weights_list"], outputs["ray_samples_list"]))
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict:
        hit = outputs["hit"][:, 0] > 0
        if not self.training:
            return {"rgb_loss": reconstruction_loss(outputs["rgb"][hit], batch["image"][hit])}
        loss = reconstruction_loss(outputs["rgb_hit"], batch["image"][hit])
        if self.eye.texture is not None and self.config.rot_loss_mult > 0:
            loss = loss + self.config.rot_loss_mult * rotation_prior_loss(
                self.eye.texture, outputs["eye_coords"], self.config.rot_angles)
        assert metrics_dict is not None
        return {"rgb_loss": loss,
                "interlevel_loss": self.config.interlevel_loss_mult * metrics_dict["interlevel"],
                "distortion_loss": self.config.distortion_loss_mult * metrics_dict["distortion"]}

    def get_image_metrics_and_images(self, outputs, batch) -> Tuple[Dict, Dict]:
        from .metrics import LpipsMetric, psnr, ssim

        image = batch["image"].to(self.device)
        mask = batch["mask"].to(self.device).float()
        pred = outputs["rgb"].clamp(0, 1) * mask
        target = image * mask
        if self._lpips is None:
            self._lpips = LpipsMetric(self.config.lpips_backbone)
        metrics = {"psnr": psnr(pred[mask[..., 0] > 0], target[mask[..., 0] > 0]),
                   "ssim": ssim(pred.cpu(), target.cpu())}
        if min(pred.shape[:2]) >= 32:
            metrics[self._lpips.label] = self._lpips(pred.cpu(), target.cpu())
        return metrics, {"img": torch.cat([target, pred], dim=1)}


def _trainer(name: str, scene: SceneArch, steps: int, rays: int, erode: int, vis: str,
             lr_steps: int = 200000, **model) -> TrainerConfig:
    def adam(lr, final, eps, wd=0.0):
        return {"optimizer": AdamOptimizerConfig(lr=lr, eps=eps, weight_decay=wd),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=final, max_steps=lr_steps)}

    return TrainerConfig(
        method_name=name, steps_per_eval_batch=500, steps_per_save=2000,
        max_num_iterations=steps, mixed_precision=True,
        pipeline=VanillaPipelineConfig(
            datamanager=EyeDataManagerConfig(train_num_rays_per_batch=rays,
                                             eval_num_rays_per_batch=rays, erode_px=erode),
            model=EyeRadianceNSModelConfig(scene=scene, eval_num_rays_per_chunk=1 << 15, **model)),
        optimizers={"fields": adam(1e-2, 1e-4, 1e-15),
                    "proposal_networks": adam(1e-2, 1e-4, 1e-15),
                    "camera_opt": adam(6e-4, 6e-6, 1e-8, 1e-2)},
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15), vis=vis)


eye_radiance_method = MethodSpecification(
    config=_trainer("eye-radiance", SceneArch(implementation="tcnn"), 30000, 4096, 13, "viewer"),
    description="Seeing the World through Your Eyes (CVPR 2024), official settings",
)
_TINY_SCENE = SceneArch(hidden_dim=32, hidden_dim_color=32, num_levels=8, max_res=256,
                        log2_hashmap_size=15, proposal_samples=(32, 16), nerf_samples=16,
                        proposal_warmup=100, anneal_max_iters=100, implementation="torch")
eye_radiance_tiny_method = MethodSpecification(
    config=_trainer("eye-radiance-tiny", _TINY_SCENE, 300, 256, 3, "tensorboard", 3000,
                    texture_num_levels=8, texture_log2_hashmap_size=12),
    description="eye-radiance, CPU-sized preset (configs/tiny.toml)",
)
