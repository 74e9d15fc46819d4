"""The vision-language teacher behind two access modes (Sec. 3 of the paper).

Shapes: `B` images, `C` classes, `P` prompt templates, `D` embedding size.

- `ClipTeacher` (nn.Module): image tower + transformers `CLIPTextModel` + text projection +
  tokenizer + logit scale. Real CLIP comes from a Hugging Face folder (`CLIPModel.from_pretrained`,
  ViT image tower, `from_hf_clip`); the synthetic stand-in uses a small conv image tower and a word
  tokenizer (`build_stand_in`), saved/loaded as a `.pt` (`save_teacher` / `load_teacher`).
- `BlackBoxTeacher` is the only thing training sees as the teacher: an input-output oracle that
  returns detached, normalised embeddings ("only input-output access"); it exposes no parameters.
- White-box access (VL2V-SD) goes through `ClipTeacher.vision_tower_copy()`.
- `pretrain_teacher`: contrastive image-caption pre-training of the stand-in on the synthetic
  set's extra domains, so it has the property the method relies on (text embeddings that
  generalise across domains). Its numbers are a stand-in's, never CLIP's.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import trange

from .losses import clip_contrastive_loss
from .model import IMAGENET_MEAN, IMAGENET_STD, Normalize
from .runtime import CheckpointError, MissingPathError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
INPUT_NORMS = {"clip": (CLIP_MEAN, CLIP_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}
OFFICIAL_TEMPLATES = ("a photo of a {}",)  # official prompt_style 2 (the default)
ZERO_SHOT_TEMPLATES = ("a photo of a {}.", "an image of a {}.", "a {}.")  # earlier default
PRETRAIN_TEMPLATES = ("a photo of a {c}.", "an image of a {c}.", "a {c}.", "a {d} image of a {c}.",
                      "a {d} {c}.")
TEACHER_KIND = "vl2v_adip_teacher"


class WordTokenizer:
    """Whitespace/punctuation word tokenizer for the stand-in teacher (no download needed)."""

    SPECIAL = ("<pad>", "<bos>", "<unk>", "<eos>")  # eos id 3: id 2 triggers HF's legacy argmax pooling

    def __init__(self, vocab: list[str], max_len: int = 12) -> None:
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.max_len = max_len
        self.pad_id, self.bos_id, self.unk_id, self.eos_id = range(4)

    @classmethod
    def build(cls, words: list[str], max_len: int = 12) -> WordTokenizer:
        return cls(list(cls.SPECIAL) + sorted(set(words) - set(cls.SPECIAL)), max_len)

    @staticmethod
    def split(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """-> input_ids, attention_mask [N, L] (bos ... eos, padded)."""
        ids = [[self.bos_id] + [self.index.get(w, self.unk_id) for w in self.split(t)][
            : self.max_len - 2] + [self.eos_id] for t in texts]
        ids_t = torch.full((len(ids), self.max_len), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids_t)
        for i, row in enumerate(ids):
            ids_t[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids_t, "attention_mask": mask}


def stand_in_vocab(class_names: list[str], domain_words: list[str]) -> list[str]:
    words = [w for t in PRETRAIN_TEMPLATES + ZERO_SHOT_TEMPLATES for w in WordTokenizer.split(
        t.replace("{c}", "").replace("{d}", "").replace("{}", ""))]
    for name in list(class_names) + list(domain_words):
        words += WordTokenizer.split(name.replace("_", " "))
    return words


def stand_in_text_config(vocab_size: int, width: int, max_len: int = 12):
    """A small CLIPTextConfig (same text-encoder class as CLIP ViT-B/16)."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=2 * width,
                          num_hidden_layers=2, num_attention_heads=max(1, width // 32),
                          max_position_embeddings=max_len, pad_token_id=0, bos_token_id=1,
                          eos_token_id=WordTokenizer([]).eos_id)


class ImageTower(nn.Module):
    """CLIP ViT image encoder: [B, 3, S, S] in [0, 1] -> [B, D] (unnormalised embeddings)."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module, image_size: int) -> None:
        super().__init__()
        self.vision_model, self.projection, self.image_size = vision_model, projection, image_size
        self.norm = Normalize(CLIP_MEAN, CLIP_STD)  # swapped by ClipTeacher.set_input_norm
        self.num_features = projection.out_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode="bicubic", align_corners=False).clamp(0, 1)
        pooled = self.vision_model(pixel_values=self.norm(images)).pooler_output
        return self.projection(pooled)  # [B, D]


class ClipTeacher(nn.Module):
    """Dual encoder with CLIP's interface; embeddings are L2-normalised (official get_img_feat).

    image_tower: [B, 3, S, S] in [0, 1] -> [B, D]; text_model: a transformers CLIPTextModel;
    text_projection: Linear(width -> D); logit_scale: log of CLIP's temperature scale.
    """

    def __init__(self, image_tower: nn.Module, text_model: nn.Module, text_projection: nn.Module,
                 tokenizer, logit_scale: float = float(np.log(1 / 0.07))) -> None:
        super().__init__()
        self.image_tower, self.text_model, self.text_projection = (image_tower, text_model,
                                                                   text_projection)
        self.tokenizer = tokenizer
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        self.embed_dim = int(text_projection.out_features)
        self.input_norm = "clip"

    @classmethod
    def from_hf_clip(cls, model: nn.Module, tokenizer) -> ClipTeacher:
        tower = ImageTower(model.vision_model, model.visual_projection,
                           int(model.config.vision_config.image_size))
        return cls(tower, model.text_model, model.text_projection, tokenizer,
                   float(model.logit_scale.detach()))

    def set_input_norm(self, kind: str) -> ClipTeacher:
        """Which mean/std the image tower subtracts from [0, 1] images: "clip" (CLIP's own
        pre-processing) or "imagenet" (the official code hands CLIP the DomainBed tensors,
        normalised with ImageNet statistics). Applies to white-box copies made afterwards."""
        mean, std = INPUT_NORMS[kind]
        norms = [m for m in self.image_tower.modules() if isinstance(m, Normalize)]
        assert norms, "image tower without a Normalize module"
        for m in norms[:1]:
            m.mean.copy_(torch.tensor(mean).view(1, 3, 1, 1))
            m.std.copy_(torch.tensor(std).view(1, 3, 1, 1))
        self.input_norm = kind
        return self

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] -> normalised image embeddings [B, D]."""
        return F.normalize(self.image_tower(images), dim=-1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """Prompts -> normalised text embeddings [N, D]."""
        device = self.text_projection.weight.device
        if isinstance(self.tokenizer, WordTokenizer):
            tok = self.tokenizer(texts)
        else:
            tok = self.tokenizer(texts, padding=True, return_tensors="pt")
        tok = {k: v.to(device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
        pooled = self.text_model(**tok).pooler_output  # [N, width], EOS-token state
        return F.normalize(self.text_projection(pooled), dim=-1)

    @torch.no_grad()
    def class_embeddings(self, class_names: list[str],
                         templates: tuple[str, ...] = OFFICIAL_TEMPLATES) -> torch.Tensor:
        """Zero-shot classifier weights [C, D]: per class, normalise each template's embedding,
        average over templates, re-normalise (official `get_zeroshot_classifier`)."""
        rows = []
        for name in class_names:
            emb = self.encode_text([t.format(name.replace("_", " ")) for t in templates])  # [P, D]
            rows.append(F.normalize(emb.mean(0), dim=-1))
        return torch.stack(rows)  # [C, D]

    def scale(self) -> float:
        """CLIP's logit scale exp(logit_scale), capped at 100 as in CLIP."""
        return float(self.logit_scale.detach().exp().clamp(max=100))

    def vision_tower_copy(self) -> nn.Module:
        """White-box access: a trainable copy of the image encoder (VL2V-SD initialisation)."""
        tower = copy.deepcopy(self.image_tower)
        tower.load_state_dict(self.image_tower.state_dict(), strict=True)
        return tower.requires_grad_(True)


class BlackBoxTeacher:
    """Input-output oracle (Sec. 3, black-box setting): image embeddings of queried images and
    text embeddings of class prompts; no parameters, no gradients. Counts image queries."""

    def __init__(self, teacher: ClipTeacher) -> None:
        self._teacher = teacher.eval().requires_grad_(False)
        self.embed_dim = teacher.embed_dim
        self.num_image_queries = 0

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        self.num_image_queries += len(images)
        return self._teacher.encode_image(images).detach()

    @torch.no_grad()
    def class_embeddings(self, class_names: list[str],
                         templates: tuple[str, ...] = OFFICIAL_TEMPLATES) -> torch.Tensor:
        return self._teacher.class_embeddings(class_names, templates).detach()

    def scale(self) -> float:
        return self._teacher.scale()


# --------------------------------------------------------------------------- build / load / save
def build_stand_in(class_names: list[str], domain_words: list[str], width: int,
                   embed_dim: int) -> ClipTeacher:
    """Random-init stand-in: conv image tower (see README: a ViT from scratch does not learn in
    the CPU budget) + transformers CLIPTextModel text tower."""
    from transformers import CLIPTextModel

    from .model import SmallCNN

    tok = WordTokenizer.build(stand_in_vocab(class_names, domain_words))
    text_cfg = stand_in_text_config(len(tok.vocab), 64)
    # pre-trained with CLIP's input statistics, like CLIP (see set_input_norm)
    tower = SmallCNN(width, out_dim=embed_dim, mean=CLIP_MEAN, std=CLIP_STD)
    return ClipTeacher(tower, CLIPTextModel(text_cfg), nn.Linear(64, embed_dim, bias=False), tok)


def save_teacher(teacher: ClipTeacher, path: str | Path) -> None:
    """Write a stand-in teacher (.pt: sizes, text config, vocabulary, state dict) atomically."""
    import os

    assert isinstance(teacher.tokenizer, WordTokenizer), "only stand-in teachers are saved here"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"kind": TEACHER_KIND, "text_config": teacher.text_model.config.to_dict(),
                "image_width": teacher.image_tower.body[1].out_channels,
                "embed_dim": teacher.embed_dim, "vocab": teacher.tokenizer.vocab,
                "state": teacher.state_dict()}, tmp)
    os.replace(tmp, path)


def load_teacher(path: str | Path) -> ClipTeacher:
    """Load a teacher: a Hugging Face CLIP folder (config.json + weights + tokenizer files, e.g.
    openai/clip-vit-base-patch16 saved locally) or a `.pt` written by `save_teacher`.

    Raises:
        MissingPathError: nothing at `path`.
        CheckpointError: the folder or file is not a readable teacher.
    """
    path = Path(path)
    where = "a HF CLIP folder (save_pretrained) or a teacher.pt written by a train.py run"
    if path.is_dir():
        from transformers import CLIPModel, CLIPTokenizer

        if not (path / "config.json").is_file():
            raise CheckpointError(f"{path} is not a Hugging Face CLIP folder (no config.json)",
                                  where)
        try:
            model = CLIPModel.from_pretrained(path, local_files_only=True)
            tok = CLIPTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            raise CheckpointError(f"not a readable CLIP teacher: {path} ({type(err).__name__})",
                                  where) from None
        return ClipTeacher.from_hf_clip(model, tok)
    if not path.is_file():
        raise MissingPathError(f"teacher not found: {path}", where)
    from transformers import CLIPTextConfig, CLIPTextModel

    from .model import SmallCNN

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - reason written by us, see runtime.load_checkpoint
        raise CheckpointError(f"not a readable teacher file: {path} (damaged, truncated or not "
                              "a PyTorch file)", where) from None
    keys = {"kind", "text_config", "image_width", "embed_dim", "vocab", "state"}
    if not isinstance(blob, dict) or blob.get("kind") != TEACHER_KIND or not keys <= set(blob):
        raise CheckpointError(f"{path} is not a teacher file written by save_teacher", where)
    try:
        text_cfg = CLIPTextConfig.from_dict(blob["text_config"])
        teacher = ClipTeacher(SmallCNN(blob["image_width"], out_dim=blob["embed_dim"],
                                       mean=CLIP_MEAN, std=CLIP_STD),
                              CLIPTextModel(text_cfg),
                              nn.Linear(text_cfg.hidden_size, blob["embed_dim"], bias=False),
                              WordTokenizer(blob["vocab"]))
        teacher.load_state_dict(blob["state"], strict=True)
    except (RuntimeError, TypeError, ValueError, KeyError, AttributeError) as err:
        raise CheckpointError(f"teacher file {path} does not match its own sizes "
                              f"({type(err).__name__})", where) from None
    return teacher.eval()


def pretrain_teacher(teacher: ClipTeacher, images: torch.Tensor, labels: torch.Tensor,
                     domains: torch.Tensor, class_names: list[str], domain_names: list[str],
                     steps: int, batch_size: int, lr: float, seed: int) -> list[float]:
    """Contrastive image-caption pre-training (CLIP loss) of the stand-in teacher.

    Captions are "a {domain} image of a {class}."-style strings drawn from PRETRAIN_TEMPLATES;
    pairs sharing a caption count as positives. Returns the loss curve.
    """
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(teacher.parameters(), lr=lr, weight_decay=0.1)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, cosine decay
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * s / max(steps, 1))))
    teacher.train()
    losses = []
    for step in (bar := trange(steps, desc="teacher pre-training", leave=False)):
        idx = torch.randint(0, len(labels), (batch_size,), generator=gen)
        t_idx = rng.integers(0, len(PRETRAIN_TEMPLATES), batch_size)
        captions = [PRETRAIN_TEMPLATES[t].format(c=class_names[int(labels[i])],
                                                d=domain_names[int(domains[i])])
                    for t, i in zip(t_idx, idx)]
        # caption j fits image i when the classes agree and j's domain word (if any) agrees
        lab, dom = labels[idx], domains[idx]
        names_domain = torch.tensor(["{d}" in PRETRAIN_TEMPLATES[t] for t in t_idx])
        match = (lab[:, None] == lab[None, :]) & (~names_domain[None, :]
                                                   | (dom[:, None] == dom[None, :]))  # [B, B]
        x = images[idx]
        x = x + 0.1 * torch.randn(len(x), 3, 1, 1, generator=gen)  # colour shift augmentation
        loss = clip_contrastive_loss(teacher.encode_image(x.clamp(0, 1)),
                                     teacher.encode_text(captions),
                                     teacher.logit_scale.exp().clamp(max=100), match)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if step % 20 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    teacher.eval()
    return losses


def write_clip_tokenizer(folder: str | Path) -> None:
    """A CLIPTokenizer with CLIP's byte-level alphabet and no merges (vocab.json, merges.txt):
    every word becomes its characters. Enough to run a random-init CLIP stand-in through the
    real tokenizer class; the text embeddings of such a stand-in mean nothing."""
    import json

    # GPT-2 / CLIP byte-level alphabet: printable bytes map to themselves, the other bytes to
    # code points from 256 upwards
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    chars = [chr(b) for b in printable]
    chars += [chr(256 + n) for n in range(256 - len(printable))]
    vocab = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")


def write_clip_stand_in(folder: str | Path, seed: int = 0) -> Path:
    """Random-init CLIP ViT-B/16 at the paper's sizes (image 224, patch 16, width 768 x 12
    layers, text width 512 x 12 layers, embedding D = 512), saved as a Hugging Face folder that
    `load_teacher` reads like real CLIP weights. For smoke runs and benchmarks only."""
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    vision = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
              "num_attention_heads": 12, "image_size": 224, "patch_size": 16}
    text = {"hidden_size": 512, "intermediate_size": 2048, "num_hidden_layers": 12,
            "num_attention_heads": 8, "max_position_embeddings": 77,
            "bos_token_id": 512, "eos_token_id": 513, "pad_token_id": 513}  # write_clip_tokenizer
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=512))
    tmp = folder.with_name(folder.name + ".tmp")
    model.save_pretrained(tmp)
    write_clip_tokenizer(tmp)
    tmp.rename(folder)
    return folder
