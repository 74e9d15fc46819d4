"""Gaussian Shell Maps generator and discriminators (Abdal, Yifan, Shi et al., CVPR 2024, Sec. 3).

Pipeline (Fig. 2): z -> StyleGAN2 mapping -> ws -> synthesis -> feature texture [B, Ct, R, R]
-> per-texel attribute decoders (official `Attdecoder`, decode_first="all") -> texture stack of
S shells x (colour 3, opacity 1, scale 3, rotation 4) -> lookup at each Gaussian site's UV on its
shell -> activations (mip-sigmoid colour, sigmoid opacity, exp scale clamped at max_scaling,
normalised quaternion) -> sites placed on the posed shells (LBS) -> splatting at the label camera.

Shapes: B batch, S shells, N Gaussians (N/S per shell), R texture resolution, H image resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import shells as sh
from .cameras import LABEL_DIM, project_points, split_label
from .networks import Discriminator, EqualLinear, MappingNetwork, SynthesisNetwork
from .render import render_gaussians
from .template import HEAD_JOINT, BodyTemplate

ATTRIBUTES = {"color": 3, "opacity": 1, "scale": 3, "rotation": 4}


@dataclass(frozen=True)
class GSMConfig:
    num_shells: int = 5
    offset_len: float = 0.05  # outer offset; inner = 1.25 x (official SHHQ/DeepFashion setting)
    num_gaussians: int = 1500
    max_scaling: float = 0.02
    z_dim: int = 64
    w_dim: int = 64
    map_depth: int = 2
    tex_resolution: int = 32
    tex_channels: int = 32
    channel_base: int = 1024
    channel_max: int = 64
    decoder_hidden: int = 32
    seed: int = 0  # seed of the fixed Gaussian sites


class AttributeDecoder(nn.Module):
    """Per-texel 2-layer MLP (official `Attdecoder`): [B, Ct, R, R] -> [B, S*k, R, R]."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int, bias_init: float = 0.0,
                 init_scale: float = 1.0):
        super().__init__()
        self.layer1 = EqualLinear(in_ch, hidden)
        self.layer2 = EqualLinear(hidden, out_ch, bias_init=bias_init, init_scale=init_scale)

    def forward(self, tex: torch.Tensor) -> torch.Tensor:
        x = tex.permute(0, 2, 3, 1)  # [B, R, R, Ct]
        x = self.layer2(F.leaky_relu(self.layer1(x), 0.2))
        return x.permute(0, 3, 1, 2)  # [B, S*k, R, R]


def mip_sigmoid(x: torch.Tensor, eps: float = 0.001) -> torch.Tensor:
    """Colour activation of the official code (from Mip-NeRF): sigmoid widened by eps."""
    return torch.sigmoid(x) * (1 + 2 * eps) - eps


class GSMGenerator(nn.Module):
    """z, label -> rendered humans (plus the Gaussians and texture stack for the regularisers)."""

    def __init__(self, cfg: GSMConfig, template: BodyTemplate):
        super().__init__()
        self.cfg = cfg
        self.template = template
        self.synthesis = SynthesisNetwork(cfg.w_dim, cfg.tex_resolution, cfg.tex_channels,
                                          cfg.channel_base, cfg.channel_max)
        self.mapping = MappingNetwork(cfg.z_dim, 0, cfg.w_dim, self.synthesis.num_ws,
                                      cfg.map_depth)
        s = cfg.num_shells
        self.decoders = nn.ModuleDict({
            "color": AttributeDecoder(cfg.tex_channels, s * 3, cfg.decoder_hidden),
            "opacity": AttributeDecoder(cfg.tex_channels, s * 1, cfg.decoder_hidden),
            # official: scaling head starts small with bias -5 (log-scale ~ 0.0067)
            "scale": AttributeDecoder(cfg.tex_channels, s * 3, cfg.decoder_hidden, -5.0, 0.1),
            "rotation": AttributeDecoder(cfg.tex_channels, s * 4, cfg.decoder_hidden)})
        offsets = sh.shell_offsets(s, cfg.offset_len, 1.25 * cfg.offset_len)
        # template-derived tensors are not saved: SMPL is licensed, it is reloaded from its path
        self.register_buffer("canonical_shells", sh.build_shells(
            template.v_template, template.faces, offsets), persistent=False)  # [S, V, 3]
        sites = sh.sample_sites(template, s, cfg.num_gaussians,
                                torch.Generator().manual_seed(cfg.seed))
        self.register_buffer("site_shell", sites["shell"])
        self.register_buffer("site_face", sites["face"])
        self.register_buffer("site_bary", sites["bary"])
        self.register_buffer("uv_mask", uv_coverage_mask(template, cfg.tex_resolution))

    @property
    def num_gaussians(self) -> int:
        return self.site_face.shape[0]

    def texture_stack(self, ws: torch.Tensor, noise: bool = True) -> dict[str, torch.Tensor]:
        """Pre-activation attribute textures {name: [B, S, k, R, R]} (Sec. 3.2)."""
        tex = self.synthesis(ws, noise=noise)  # [B, Ct, R, R]
        b, s, r = tex.shape[0], self.cfg.num_shells, tex.shape[-1]
        return {k: dec(tex).reshape(b, s, ATTRIBUTES[k], r, r) for k, dec in self.decoders.items()}

    def lookup(self, textures: dict[str, torch.Tensor], bary: torch.Tensor) -> dict[str, torch.Tensor]:
        """Bilinear texture lookup at each site's UV on its own shell -> activated attributes.

        Returns: color [B, N, 3], opacity [B, N], scale [B, N, 3] (clamped), rotation [B, N, 4].
        """
        uv = sh.site_uvs(self.template, self.site_face, bary)  # [N, 2]
        b, s = next(iter(textures.values())).shape[:2]
        per_shell = self.num_gaussians // s
        # texture row 0 is v = 1 (images are stored top-down, as the official `.flip(1)`)
        grid = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1)
        grid = grid.reshape(1, s, per_shell, 2).expand(b, -1, -1, -1).reshape(b * s, per_shell, 1, 2)
        out = {}
        for name, tex in textures.items():
            k = tex.shape[2]
            vals = F.grid_sample(tex.reshape(b * s, k, *tex.shape[-2:]), grid,
                                 align_corners=False, padding_mode="border")  # [B*S, k, n, 1]
            out[name] = vals.reshape(b, s, k, per_shell).permute(0, 1, 3, 2).reshape(b, -1, k)
        return {"color": mip_sigmoid(out["color"]),
                "opacity": torch.sigmoid(out["opacity"][..., 0]),
                "scale": torch.exp(out["scale"]).clamp(max=self.cfg.max_scaling),
                "rotation": F.normalize(out["rotation"], dim=-1)}

    def pose(self, label: torch.Tensor, resolution: int) -> dict[str, torch.Tensor]:
        """Posed shells [B, S, V, 3], joints [B, J, 3] and camera from a label [B, 107]."""
        cam = split_label(label, resolution)
        verts, joints = sh.pose_shells(self.template, self.canonical_shells, cam["betas"],
                                       cam["body_pose"], cam["global_orient"])
        return {**cam, "shell_verts": verts, "joints": joints}

    def forward(self, z: torch.Tensor, label: torch.Tensor, resolution: int,
                truncation_psi: float = 1.0, perturb: bool = False, background: float = 1.0,
                backend: str = "torch", ws: torch.Tensor | None = None,
                update_w_avg: bool = False, noise: bool = True) -> dict[str, torch.Tensor]:
        """Generate and render.

        Args:
            z: [B, z_dim]. label: [B, 107] camera + SMPL (see cameras.py). resolution: H = W.
            perturb: resample barycentrics (official perturb_pts, used in training).
            noise: StyleGAN2 per-pixel noise in the synthesis network (off = deterministic).
        Returns:
            dict: image [B, 3, H, H] in [-1, 1], alpha [B, 1, H, H], depth [B, 1, H, H],
            textures (pre-activation stack), gaussians (means/quats/scales/opacities/colors),
            joints2d [B, J, 2] pixels, ws, num_degenerate_scales (clamped, counted).
        """
        assert label.shape == (z.shape[0], LABEL_DIM), label.shape
        if ws is None:
            ws = self.mapping(z, truncation_psi=truncation_psi, update_w_avg=update_w_avg)
        textures = self.texture_stack(ws, noise=noise)
        bary = sh.random_barycentrics(self.num_gaussians).to(z.device) if perturb else self.site_bary
        attrs = self.lookup(textures, bary)
        posed = self.pose(label, resolution)
        means = sh.interpolate_sites(posed["shell_verts"], self.template.faces, self.site_shell,
                                     self.site_face, bary)  # [B, N, 3]
        gaussians = {"means": means, "quats": attrs["rotation"], "scales": attrs["scale"],
                     "opacities": attrs["opacity"], "colors": attrs["color"]}
        bg = torch.full((z.shape[0], 3), background, device=z.device)
        out = render_gaussians(**gaussians, viewmats=posed["viewmats"], Ks=posed["Ks"],
                               width=resolution, height=resolution, background=bg, backend=backend)
        return {"image": out["image"].permute(0, 3, 1, 2) * 2 - 1,
                "alpha": out["alpha"].permute(0, 3, 1, 2), "depth": out["depth"].permute(0, 3, 1, 2),
                "textures": textures, "gaussians": gaussians, "ws": ws,
                "num_degenerate_scales": out["num_degenerate_scales"],
                "joints2d": project_points(posed["joints"], posed["viewmats"], posed["Ks"])}

    def to(self, *args, **kwargs):
        device = torch._C._nn._parse_to(*args, **kwargs)[0]
        if device is not None:  # the template is a plain dataclass: move it alongside
            self.template = BodyTemplate(**{k: v.to(device) for k, v in vars(self.template).items()})
        return super().to(*args, **kwargs)


def uv_coverage_mask(template: BodyTemplate, resolution: int, samples: int = 24) -> torch.Tensor:
    """[R, R] mask of texels covered by the UV layout (the official `mask_uv.png`)."""
    gen = torch.Generator().manual_seed(0)
    bary = sh.random_barycentrics(template.ft.shape[0] * samples, gen)
    face = torch.arange(template.ft.shape[0]).repeat_interleave(samples)
    uv = sh.site_uvs(template, face, bary)
    corners = template.vt  # also mark the UV vertices themselves
    uv = torch.cat([uv, corners])
    col = (uv[:, 0] * resolution).long().clamp(0, resolution - 1)
    row = ((1 - uv[:, 1]) * resolution).long().clamp(0, resolution - 1)
    mask = torch.zeros(resolution, resolution)
    mask[row, col] = 1.0
    return mask


class HumanDiscriminator(nn.Module):
    """Full-image D conditioned on the label (official D c_dim 107) + optional face D."""

    def __init__(self, resolution: int, channel_base: int, channel_max: int, mbstd_group: int,
                 face_resolution: int = 0):
        super().__init__()
        self.main = Discriminator(resolution, LABEL_DIM, channel_base, channel_max, mbstd_group)
        self.face = (Discriminator(face_resolution, 0, channel_base, channel_max, mbstd_group)
                     if face_resolution else None)
        self.face_resolution = face_resolution

    def forward(self, img: torch.Tensor, label: torch.Tensor,
                head2d: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        out = {"main": self.main(img, label)}
        if self.face is not None:
            out["face"] = self.face(crop_around(img, head2d, self.face_resolution))
        return out


def crop_around(img: torch.Tensor, center_px: torch.Tensor, size: int,
                fraction: float = 0.25) -> torch.Tensor:
    """Square crops [B, C, size, size] of side fraction*H centred at pixel coords [B, 2]."""
    b, _, h, w = img.shape
    theta = torch.zeros(b, 2, 3, device=img.device, dtype=img.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = fraction
    theta[:, 0, 2] = center_px[:, 0] / w * 2 - 1
    theta[:, 1, 2] = center_px[:, 1] / h * 2 - 1
    grid = F.affine_grid(theta, (b, img.shape[1], size, size), align_corners=False)
    return F.grid_sample(img, grid, align_corners=False, padding_mode="border")


def head_center(joints2d: torch.Tensor) -> torch.Tensor:
    """Pixel position of the SMPL head joint: [B, 2]."""
    return joints2d[:, HEAD_JOINT]
