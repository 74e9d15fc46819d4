"""Pretrained parts loaded from local folders (the paper's setting), through the same
ccdae.Modality interface as the world stand-ins.

* HFTextModality: one HF causal LM (pretrained_lm) is both the describer (prompted to describe
  the text in at most c words, the analogue of the paper's length-budgeted prompts) and the
  likelihood model log p(x | "Description: h").
* HFImageModality: an HF image-to-text captioner (pretrained_captioner) is the describer; a
  diffusers Stable-Diffusion folder (pretrained_t2i) gives -log p(x|h) as the latent DDPM -ELBO.
Nothing is downloaded: both need local folders (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import diffusion
from .modalities import content_seed
from .runtime import DataError, MissingPathError

DESCRIBE_PROMPT = "Text: {x}\nDescribe the text above in at most {c} words:"
CONDITION_PROMPT = "Description: {h}\nText:"


def _words(text: str, budget: int) -> tuple[str, ...]:
    return tuple(text.replace("\n", " ").split()[:budget])


def _folder(path: str, key: str) -> str:
    """A pretrained-model folder the config names: MissingPathError when it is absent."""
    if not Path(path).is_dir():
        raise MissingPathError(f"{key}={path!r} is not a folder",
                               "README 'Pretrained weights': a local Hugging Face folder")
    return path


@contextmanager
def _loading(key: str, path: str):
    """Turn a failed from_pretrained (missing config.json, wrong model type) into a UserError."""
    try:
        yield
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise DataError(f"{key}={path!r} cannot be loaded: {type(err).__name__} {first}",
                        "README 'Pretrained weights'") from err


class HFTextModality:
    """Text-text CC:DAE with a local causal LM."""

    def __init__(self, path: str, texts: list[str], device: torch.device | str = "cpu"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        for t in texts:
            if not t.strip():
                raise ValueError("empty text sample: every text must hold at least one word")
        with _loading("pretrained_lm", _folder(path, "pretrained_lm")):
            self.tok = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
        self.texts, self.device = list(texts), torch.device(device)
        self.pad_id = self.tok.pad_token_id if self.tok.pad_token_id is not None else (
            self.tok.eos_token_id or 0)

    def _ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def describe(self, idx, budget, n, temperature, seed):
        out = []
        for i in idx:
            prompt = torch.tensor([self._ids(DESCRIBE_PROMPT.format(x=self.texts[i], c=budget))],
                                  device=self.device)
            torch.manual_seed(content_seed(seed, self.texts[i].encode(), budget))
            gen = self.model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                      do_sample=temperature > 0, temperature=max(temperature, 1e-5),
                                      max_new_tokens=2 * budget + 2, num_return_sequences=n,
                                      pad_token_id=self.pad_id)
            texts = self.tok.batch_decode(gen[:, prompt.shape[1]:], skip_special_tokens=True)
            out.append([_words(t, budget) for t in texts])
        return out

    @torch.no_grad()
    def _continuation_logprob(self, prefixes: list[str], continuations: list[str]) -> np.ndarray:
        out = []
        for prefix, cont in zip(prefixes, continuations):
            p, c = self._ids(prefix), self._ids(" " + cont)
            ids = torch.tensor([p + c], device=self.device)
            logp = torch.log_softmax(self.model(ids).logits[0, :-1].float(), -1)  # [L-1, V]
            target = ids[0, 1:]
            lp = logp[torch.arange(len(target)), target][len(p) - 1:]
            out.append(float(lp.sum()))
        return np.asarray(out)

    def nll(self, idx, descs):
        return -self._continuation_logprob([CONDITION_PROMPT.format(h=" ".join(h)) for h in descs],
                                           [self.texts[i] for i in idx])

    def desc_logprob(self, idx, descs, budget):
        return self._continuation_logprob(
            [DESCRIBE_PROMPT.format(x=self.texts[i], c=budget) for i in idx],
            [" ".join(h) for h in descs])


class HFImageModality:
    """Image-image CC:DAE with a local captioner and a local Stable-Diffusion folder.
    images: [N, 3, H, W] in [0, 1]. Tested offline with tiny random BLIP / SD components."""

    def __init__(self, captioner: str, t2i: str, images: torch.Tensor,
                 device: torch.device | str = "cpu", elbo_timesteps: int = 20, seed: int = 0,
                 resolution: int = 512):
        import transformers
        from diffusers import StableDiffusionPipeline

        auto = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
        with _loading("pretrained_captioner", _folder(captioner, "pretrained_captioner")):
            self.processor = transformers.AutoProcessor.from_pretrained(captioner)
            self.captioner = auto.from_pretrained(captioner).to(device).eval()
        with _loading("pretrained_t2i", _folder(t2i, "pretrained_t2i")):
            pipe = StableDiffusionPipeline.from_pretrained(t2i, safety_checker=None)
        self.vae, self.unet = pipe.vae.to(device).eval(), pipe.unet.to(device).eval()
        self.text_encoder, self.tokenizer = pipe.text_encoder.to(device).eval(), pipe.tokenizer
        self.alpha_bar = pipe.scheduler.alphas_cumprod.float().to(device)
        self.images, self.device = images.float(), torch.device(device)
        self.timesteps = diffusion.stratified_timesteps(len(self.alpha_bar), elbo_timesteps)
        self.weights = diffusion.elbo_weights(self.alpha_bar).to(device)
        self.seed, self.resolution = seed, resolution  # SD 1.x works at 512 x 512
        self._latents: dict[int, torch.Tensor] = {}

    @torch.no_grad()
    def describe(self, idx, budget, n, temperature, seed):
        out = []
        for i in idx:
            pixels = (self.images[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            inputs = self.processor(images=pixels, return_tensors="pt").to(self.device)
            torch.manual_seed(content_seed(seed, self.images[i].numpy().tobytes(), budget))
            gen = self.captioner.generate(**inputs, do_sample=temperature > 0,
                                          temperature=max(temperature, 1e-5),
                                          max_new_tokens=2 * budget + 2, num_return_sequences=n)
            texts = self.processor.batch_decode(gen, skip_special_tokens=True)
            out.append([_words(t, budget) for t in texts])
        return out

    @torch.no_grad()
    def _latent(self, i: int) -> torch.Tensor:
        if i not in self._latents:
            x = self.images[i: i + 1].to(self.device) * 2 - 1
            x = torch.nn.functional.interpolate(x, size=self.resolution, mode="bicubic", align_corners=False)
            dist = self.vae.encode(x).latent_dist
            self._latents[i] = dist.mean * self.vae.config.scaling_factor
        return self._latents[i]

    @torch.no_grad()
    def nll(self, idx, descs):
        out = []
        for i, h in zip(idx, descs):
            z0 = self._latent(i)
            tok = self.tokenizer([" ".join(h)], padding="max_length", truncation=True,
                                 max_length=self.tokenizer.model_max_length, return_tensors="pt")
            cond = self.text_encoder(tok.input_ids.to(self.device))[0]
            noise = torch.randn((len(self.timesteps),) + tuple(z0.shape[1:]),
                                generator=torch.Generator().manual_seed(self.seed)).to(self.device)

            def eps_fn(x_t, t, cond=cond):
                return self.unet(x_t, t, encoder_hidden_states=cond.expand(len(x_t), -1, -1)).sample

            out.append(float(diffusion.negative_elbo(eps_fn, z0, self.timesteps, noise,
                                                     self.alpha_bar, self.weights)[0]))
        return np.asarray(out)

    def desc_logprob(self, idx, descs, budget):
        raise NotImplementedError("encoder route with an HF captioner: use ccdae_likelihood=decoder")
