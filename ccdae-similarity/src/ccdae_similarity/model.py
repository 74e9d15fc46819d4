"""Stand-in models of CC:DAE (method; section numbers unverified): describer, likelihood models, CLIP-like baseline.

The paper uses a pretrained multimodal captioner (describer), a text-conditioned image generative
model / a language model (likelihood of a sample given a description). Offline, small versions
with the same interfaces are trained from scratch on the procedural world (world.py).

Shapes: B batch, L/T token lengths, M memory tokens, D model width, H W image side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from . import diffusion


def _transformer_layer(dim: int, heads: int, decoder: bool) -> nn.Module:
    cls = nn.TransformerDecoderLayer if decoder else nn.TransformerEncoderLayer
    return cls(dim, heads, dim_feedforward=4 * dim, dropout=0.0, batch_first=True,
               norm_first=True)


class TokenEncoder(nn.Module):
    """Embeds a token sequence and contextualises it (transformer encoder)."""

    def __init__(self, vocab_size: int, dim: int, heads: int, layers: int, max_len: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.encoder = nn.TransformerEncoder(_transformer_layer(dim, heads, False), layers,
                                             enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: ids [B, L] (0 = pad). Returns memory [B, L, D], pad mask [B, L] (True = pad)."""
        assert ids.shape[1] <= self.pos.shape[1], ids.shape
        pad = ids.eq(0)
        h = self.embed(ids) + self.pos[:, : ids.shape[1]]
        return self.norm(self.encoder(h, src_key_padding_mask=pad)), pad


class ImageEncoder(nn.Module):
    """Small conv stem -> (H/4 * W/4) patch tokens -> one transformer layer."""

    def __init__(self, dim: int, heads: int, image_size: int):
        super().__init__()
        assert image_size % 4 == 0, image_size
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(64, dim, 3, stride=2, padding=1))
        self.pos = nn.Parameter(torch.zeros(1, (image_size // 4) ** 2, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.encoder = nn.TransformerEncoder(_transformer_layer(dim, heads, False), 1,
                                             enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: images [B, 3, H, W] in [0, 1]. Returns memory [B, M, D], pad mask [B, M]."""
        h = self.stem(images * 2 - 1)  # [B, D, H/4, W/4]
        h = rearrange(h, "b d y x -> b (y x) d") + self.pos  # [B, M, D]
        pad = torch.zeros(h.shape[:2], dtype=torch.bool, device=h.device)
        return self.norm(self.encoder(h)), pad


class ConditionalDecoder(nn.Module):
    """Causal transformer decoder over a vocabulary, cross-attending to a memory."""

    def __init__(self, vocab_size: int, dim: int, heads: int, layers: int, max_len: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.Parameter(torch.zeros(1, max_len, dim))
        nn.init.normal_(self.pos, std=0.02)
        self.decoder = nn.TransformerDecoder(_transformer_layer(dim, heads, True), layers)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size)

    def forward(self, ids: torch.Tensor, memory: torch.Tensor,
                memory_pad: torch.Tensor) -> torch.Tensor:
        """Args: ids [B, T], memory [B, M, D], memory_pad [B, M]. Returns logits [B, T, V]."""
        T = ids.shape[1]
        assert T <= self.pos.shape[1], ids.shape
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=ids.device), 1)
        h = self.embed(ids) + self.pos[:, :T]
        h = self.decoder(h, memory, tgt_mask=causal, tgt_key_padding_mask=ids.eq(0),
                         memory_key_padding_mask=memory_pad)
        return self.head(self.norm(h))


def sequence_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed token NLL per sequence, ignoring pad (id 0). logits [B,T,V], targets [B,T] -> [B]."""
    nll = F.cross_entropy(rearrange(logits, "b t v -> b v t"), targets, reduction="none")
    return (nll * targets.ne(0)).sum(1)  # [B]


class Seq2Seq(nn.Module):
    """encoder(source) -> memory; decoder models target tokens. Used as
    image describer (image -> description), text describer (sentence -> description), and text
    likelihood model (description -> sentence), the LM role in the method."""

    def __init__(self, encoder: nn.Module, decoder: ConditionalDecoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def nll(self, source: torch.Tensor, decoder_in: torch.Tensor,
            targets: torch.Tensor) -> torch.Tensor:
        """-log p(targets | source) in nats, [B] (teacher forcing)."""
        memory, pad = self.encoder(source)
        return sequence_nll(self.decoder(decoder_in, memory, pad), targets)

    @torch.no_grad()
    def sample(self, source: torch.Tensor, start_ids: torch.Tensor, max_new: int,
               gumbel: torch.Tensor, temperature: float, banned: torch.Tensor,
               eos_id: int) -> torch.Tensor:
        """Sample at most `max_new` tokens after `start_ids` (Gumbel-max, noise given per row so
        the draw of a sample never depends on the rest of the batch).

        Args:
            source: encoder input, batch B.  start_ids: [B, S] prompt tokens.
            gumbel: [B, max_new, V] Gumbel noise.  banned: [V] bool, tokens never emitted.
        Returns: [B, max_new] generated ids, 0 (pad) after <eos>.
        """
        memory, pad = self.encoder(source)
        ids = start_ids
        done = torch.zeros(len(ids), dtype=torch.bool, device=ids.device)
        out = torch.zeros(len(ids), max_new, dtype=torch.long, device=ids.device)
        for step in range(max_new):
            logits = self.decoder(ids, memory, pad)[:, -1].float()  # [B, V]
            logits = logits.masked_fill(banned, -math.inf)
            if step == 0:  # at least one token: an empty description says nothing
                logits[:, eos_id] = -math.inf
            scores = logits / max(temperature, 1e-6) + (gumbel[:, step] if temperature > 0 else 0)
            nxt = scores.argmax(-1)  # [B]
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)
            out[:, step] = nxt
            done = done | nxt.eq(eos_id)
            ids = torch.cat([ids, nxt[:, None]], 1)
            if bool(done.all()):
                break
        return out


class DiffusionLikelihood(nn.Module):
    """Text-conditioned DDPM on images (diffusers UNet2DConditionModel): the image likelihood
    model; -log p(x|h) is bounded by the negative ELBO (diffusion.py)."""

    def __init__(self, cond_encoder: TokenEncoder, image_size: int, channels: tuple[int, ...],
                 cond_dim: int, num_steps: int):
        super().__init__()
        from diffusers import UNet2DConditionModel

        n = len(channels)
        self.cond_encoder = cond_encoder
        self.unet = UNet2DConditionModel(
            sample_size=image_size, in_channels=3, out_channels=3, layers_per_block=1,
            block_out_channels=tuple(channels), norm_num_groups=8, cross_attention_dim=cond_dim,
            attention_head_dim=8,
            down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
            up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",))
        self.register_buffer("alpha_bar", diffusion.linear_alpha_bar(num_steps))

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """eps_theta(x_t, t, h): x_t [B,3,H,W], t [B] long, cond [B,L] ids -> [B,3,H,W]."""
        memory, pad = self.cond_encoder(cond)
        return self.unet(x_t, t, encoder_hidden_states=memory,
                         encoder_attention_mask=(~pad).float()).sample

    def loss(self, images: torch.Tensor, cond: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Simple DDPM loss (Ho et al. 2020), images [B,3,H,W] in [0,1] -> scalar."""
        x0 = images * 2 - 1
        t = torch.randint(0, len(self.alpha_bar), (len(x0),), device=x0.device,
                          generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, generator=generator)
        x_t = diffusion.q_sample(x0, t, noise, self.alpha_bar)
        return F.mse_loss(self.eps(x_t, t, cond), noise)


class ClipLike(nn.Module):
    """CLIP-style baseline trained on the same world: image / sentence towers aligned to the
    description tower with InfoNCE; similarity baseline = cosine of image (or sentence) embeddings."""

    def __init__(self, image_encoder: ImageEncoder, text_encoder: TokenEncoder,
                 desc_encoder: TokenEncoder, dim: int):
        super().__init__()
        self.image_encoder, self.text_encoder, self.desc_encoder = (
            image_encoder, text_encoder, desc_encoder)
        self.proj = nn.ModuleDict({k: nn.Linear(dim, dim) for k in ("image", "text", "desc")})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def embed(self, kind: str, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm embedding [B, D] of images [B,3,H,W] or token ids [B, L]."""
        enc = {"image": self.image_encoder, "text": self.text_encoder, "desc": self.desc_encoder}
        memory, pad = enc[kind](x)
        keep = (~pad).float()[..., None]
        pooled = (memory * keep).sum(1) / keep.sum(1).clamp_min(1.0)  # [B, D]
        return F.normalize(self.proj[kind](pooled), dim=-1)


@dataclass(frozen=True)
class SystemSpec:
    """Constructor arguments of CCDAESystem (rebuilt from a checkpoint's config)."""

    desc_vocab: int
    text_vocab: int
    dim: int
    heads: int
    layers: int
    image_size: int
    unet_channels: tuple[int, ...]
    diffusion_steps: int


class CCDAESystem(nn.Module):
    """All trained stand-ins in one module (one checkpoint)."""

    def __init__(self, spec: SystemSpec):
        super().__init__()
        d, h, n = spec.dim, spec.heads, spec.layers
        self.spec = spec
        self.image_describer = Seq2Seq(ImageEncoder(d, h, spec.image_size),
                                       ConditionalDecoder(spec.desc_vocab, d, h, n))
        self.text_describer = Seq2Seq(TokenEncoder(spec.text_vocab, d, h, n),
                                      ConditionalDecoder(spec.desc_vocab, d, h, n))
        self.text_likelihood = Seq2Seq(TokenEncoder(spec.desc_vocab, d, h, n),
                                       ConditionalDecoder(spec.text_vocab, d, h, n))
        self.image_likelihood = DiffusionLikelihood(
            TokenEncoder(spec.desc_vocab, d, h, n), spec.image_size, spec.unet_channels, d,
            spec.diffusion_steps)
        self.clip = ClipLike(ImageEncoder(d, h, spec.image_size),
                             TokenEncoder(spec.text_vocab, d, h, 1),
                             TokenEncoder(spec.desc_vocab, d, h, 1), d)
