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
from .template import HEAD_JOINT, BodyTemplate, ShellBase, load_shell_base

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
    """z, label -> rendered humans (plus the Gaussians and texture stack for the regularisers).

    Args:
        cfg: sizes. template: the SMPL body model. base: the shell base mesh (default: SMPL's
        own UV mesh). head_ids: SMPL vertex ids of the head (face crops; default: vertices
        skinned mostly to the head joint). uv_mask: [R, R] texels inside the UV layout (default:
        rasterised from the base mesh's UV triangles).
    """

    def __init__(self, cfg: GSMConfig, template: BodyTemplate, base: ShellBase | None = None,
                 head_ids: torch.Tensor | None = None, uv_mask: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        base = base if base is not None else load_shell_base(template)
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
        # template-derived tensors are not saved: SMPL is licensed, it is reloaded from its path
        # (official SHHQ/DeepFashion: inner offset 1.25 x offset_len when no shrunk mesh is given)
        self.rig = sh.ShellRig(template, base, s, cfg.offset_len, 1.25 * cfg.offset_len, head_ids)
        sites = sh.sample_sites(base.verts, base.faces, s, cfg.num_gaussians,
                                torch.Generator().manual_seed(cfg.seed))
        self.register_buffer("site_shell", sites["shell"])
        self.register_buffer("site_face", sites["face"])
        self.register_buffer("site_bary", sites["bary"])
        mask = uv_mask if uv_mask is not None else rasterize_uv_mask(base.vt, base.ft,
                                                                    cfg.tex_resolution)
        assert mask.shape == (cfg.tex_resolution,) * 2, mask.shape
        self.register_buffer("uv_mask", mask.float(), persistent=False)

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
        uv = sh.site_uvs(self.rig.vt, self.rig.ft, self.site_face, bary)  # [N, 2]
        b, s = next(iter(textures.values())).shape[:2]
        per_shell = self.num_gaussians // s
        # texture row 0 is v = 1 (images are stored top-down, as the official `.flip(1)`)
        grid = torch.stack([uv[:, 0] * 2 - 1, 1 - uv[:, 1] * 2], -1)
        grid = grid.reshape(1, s, per_shell, 2).expand(b, -1, -1, -1).reshape(b * s, per_shell, 1, 2)
        out = {}
        for name, tex in textures.items():
            k = tex.shape[2]
            # official `lookup_texture_map`: bilinear, align_corners=True, zero padding
            vals = F.grid_sample(tex.reshape(b * s, k, *tex.shape[-2:]), grid,
                                 align_corners=True, padding_mode="zeros")  # [B*S, k, n, 1]
            out[name] = vals.reshape(b, s, k, per_shell).permute(0, 1, 3, 2).reshape(b, -1, k)
        return {"color": mip_sigmoid(out["color"]),
                "opacity": torch.sigmoid(out["opacity"][..., 0]),
                "scale": torch.exp(out["scale"]).clamp(max=self.cfg.max_scaling),
                "rotation": F.normalize(out["rotation"], dim=-1)}

    def pose(self, label: torch.Tensor, resolution: int) -> dict[str, torch.Tensor]:
        """Posed shells `shell_verts` [B, S, V, 3], `joints` [B, J, 3], SMPL `head_verts`
        [B, H, 3] and the camera (viewmats, Ks) from a label [B, 107]."""
        cam = split_label(label, resolution)
        return {**cam, **self.rig.pose(cam["betas"], cam["body_pose"], cam["global_orient"])}

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
        # perturb: barycentrics redrawn per batch (on the device's generator, CUDA on a GPU)
        bary = (sh.random_barycentrics(self.num_gaussians, device=z.device) if perturb
                else self.site_bary)
        attrs = self.lookup(textures, bary)
        posed = self.pose(label, resolution)
        means = sh.interpolate_sites(posed["shell_verts"], self.rig.faces, self.site_shell,
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
                "joints2d": project_points(posed["joints"], posed["viewmats"], posed["Ks"]),
                "head_box": head_boxes(project_points(posed["head_verts"], posed["viewmats"],
                                                      posed["Ks"]), resolution, resolution)}

    @torch.no_grad()
    def head_box(self, label: torch.Tensor, resolution: int) -> torch.Tensor:
        """Face-crop boxes [B, 4] of the conditioning SMPL bodies (for the real images)."""
        posed = self.pose(label, resolution)
        return head_boxes(project_points(posed["head_verts"], posed["viewmats"], posed["Ks"]),
                          resolution, resolution)


def rasterize_uv_mask(vt: torch.Tensor, ft: torch.Tensor, resolution: int) -> torch.Tensor:
    """[R, R] mask of the texels that any UV triangle overlaps (exact, conservative coverage:
    a separating-axis test of each texel square against each triangle in its bounding box), the
    role of the official `mask_uv.png`. Row 0 is v = 1 (images top-down).

    Args: vt [T, 2] in [0, 1], ft [F, 3].
    """
    res = resolution
    tri = vt[ft].double().cpu() * res  # [F, 3, 2] in texel units
    tri[..., 1] = res - tri[..., 1]  # y down
    lo = tri.min(1).values.floor().long().clamp(0, res - 1)
    hi = tri.max(1).values.ceil().long().clamp(1, res)  # exclusive
    wx, wy = (hi[:, 0] - lo[:, 0]).clamp(min=1), (hi[:, 1] - lo[:, 1]).clamp(min=1)
    counts = wx * wy
    tid = torch.repeat_interleave(torch.arange(len(tri)), counts)  # [Q]
    local = torch.arange(len(tid)) - (torch.cumsum(counts, 0) - counts)[tid]
    col, row = lo[tid, 0] + local % wx[tid], lo[tid, 1] + local // wx[tid]
    centre = torch.stack([col, row], -1).double() + 0.5  # [Q, 2]
    pts = tri[tid]  # [Q, 3, 2]
    eps = 1e-9  # touching at an edge or corner is not overlap
    inside = torch.ones(len(tid), dtype=torch.bool)
    for axis in (0, 1):  # the square's own axes (triangle bbox vs texel)
        inside &= (pts[..., axis].min(1).values < centre[:, axis] + 0.5 - eps)
        inside &= (pts[..., axis].max(1).values > centre[:, axis] - 0.5 + eps)
    for k in range(3):  # the triangle's edge normals
        edge = pts[:, (k + 1) % 3] - pts[:, k]
        normal = torch.stack([-edge[:, 1], edge[:, 0]], -1)  # [Q, 2]
        proj = torch.einsum("qkd,qd->qk", pts, normal)  # triangle's projection
        c = (centre * normal).sum(-1)
        half = 0.5 * normal.abs().sum(-1)
        inside &= (proj.min(1).values < c + half - eps) & (proj.max(1).values > c - half + eps)
    mask = torch.zeros(res * res)
    mask[(row * res + col)[inside]] = 1.0
    return mask.reshape(res, res)


def load_uv_mask(path, resolution: int) -> torch.Tensor:
    """The official `mask_uv.png` as a [R, R] float mask in [0, 1], area-resampled to the
    texture resolution (the official loss resamples it with an antialiasing filter)."""
    import numpy as np
    from PIL import Image

    from .runtime import DataError, MissingPathError

    try:
        img = np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255.0
    except FileNotFoundError as err:
        raise MissingPathError(f"UV mask not found: {path}", "uv_mask names a PNG such as "
                               "the official assets/smpl/mask_uv.png") from err
    except Exception as err:  # PIL raises many types for a broken file
        raise DataError(f"UV mask {path} is not a readable image ({type(err).__name__})") from err
    mask = torch.from_numpy(img)[None, None]
    if mask.shape[-1] != mask.shape[-2]:
        raise DataError(f"UV mask {path} is {mask.shape[-1]}x{mask.shape[-2]}, not square")
    mask = F.interpolate(mask, size=resolution, mode="area")[0, 0]
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
                face_box: torch.Tensor | None = None, face_crop: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """img [B, 3, H, W], label [B, 107]; face crops from `face_box` [B, 4] (x1 y1 x2 y2
        pixels) or given directly as `face_crop` [B, 3, r, r]. Returns logits main (and face)."""
        out = {"main": self.main(img, label)}
        if self.face is not None:
            if face_crop is None:
                face_crop = crop_boxes(img, face_box, self.face_resolution)
            out["face"] = self.face(face_crop)
        return out


def head_boxes(head2d: torch.Tensor, width: int, height: int, expand: float = 0.5
               ) -> torch.Tensor:
    """Square face-crop boxes [B, 4] (x1, y1, x2, y2 integer pixels) around projected head
    vertices [B, H, 2] (official `get_part_bbox`): the bounding box squared on its longer side,
    grown by `expand` x side on every side, clamped to the image, truncated to integers."""
    lo, hi = head2d.min(1).values, head2d.max(1).values  # [B, 2]
    centre, half = (lo + hi) / 2, (hi - lo).amax(-1, keepdim=True) / 2
    lo, hi = centre - half, centre + half
    side = hi - lo
    lo, hi = lo - expand * side, hi + expand * side
    size = torch.tensor([width, height], dtype=head2d.dtype, device=head2d.device)
    lo = torch.minimum(lo.clamp(min=0), size)
    hi = torch.minimum(hi.clamp(min=0), size)
    return torch.cat([lo, hi], -1).detach().long().to(head2d.dtype)  # [B, 4]


def crop_boxes(img: torch.Tensor, boxes: torch.Tensor, size: int) -> torch.Tensor:
    """roi_align crops [B, C, size, size] of img [B, C, H, W] at boxes [B, 4] (official
    `crop_parts`: torchvision roi_align, spatial scale 1, adaptive sampling, aligned=False)."""
    from torchvision.ops import roi_align

    idx = torch.arange(len(img), device=img.device, dtype=img.dtype)[:, None]
    return roi_align(img, torch.cat([idx, boxes.to(img.dtype)], 1), (size, size))


def head_center(joints2d: torch.Tensor) -> torch.Tensor:
    """Pixel position of the SMPL head joint: [B, 2]."""
    return joints2d[:, HEAD_JOINT]
