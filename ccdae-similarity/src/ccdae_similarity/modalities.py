"""Modality adapters: bind a describer + likelihood model to a bank of samples (ccdae.Modality).

Descriptions are drawn with per-sample Gumbel noise seeded from (seed, content hash, budget), so
a sample's descriptions never depend on the pair or batch it is scored in: this makes the
batched scorer equal the per-pair one and d(x1, x2) = d(x2, x1) exactly.
Shapes: N samples, K draws, V vocabulary, H W image side.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from . import data, diffusion
from .ccdae import Description
from .model import CCDAESystem, Seq2Seq


def content_seed(seed: int, key: bytes, budget: int) -> int:
    digest = hashlib.sha1(key + f"|{seed}|{budget}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _gumbel(seeds: list[int], n: int, steps: int, vocab: int) -> torch.Tensor:
    """[len(seeds)*n, steps, vocab] Gumbel noise, rows of one sample from its own generator."""
    rows = []
    for s in seeds:
        u = torch.rand(n, steps, vocab, generator=torch.Generator().manual_seed(s))
        rows.append(-torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-10))))
    return torch.cat(rows)


class _SeqDescriber:
    """Budget-prompted sampling and scoring of descriptions with a Seq2Seq describer."""

    def __init__(self, model: Seq2Seq, vocab: data.Vocab, device: torch.device):
        self.model, self.vocab, self.device = model, vocab, device
        banned = torch.zeros(len(vocab), dtype=torch.bool)
        for i, w in enumerate(vocab.itos):
            banned[i] = w in (data.PAD, data.BOS, data.UNK) or w.startswith("<c")
        self.banned = banned.to(device)

    def sample(self, source: torch.Tensor, keys: list[bytes], budget: int, n: int,
               temperature: float, seed: int) -> list[list[Description]]:
        N = len(keys)
        src = source.repeat_interleave(n, 0)  # [N*n, ...]
        start = torch.full((N * n, 1), self.vocab.stoi[data.budget_token(budget)],
                           dtype=torch.long, device=self.device)
        gumbel = _gumbel([content_seed(seed, k, budget) for k in keys], n, budget,
                         len(self.vocab)).to(self.device)
        self.model.eval()
        ids = self.model.sample(src, start, budget, gumbel, temperature, self.banned,
                                self.vocab.stoi[data.EOS])  # [N*n, budget]
        descs = [self.vocab.decode(row)[:budget] for row in ids.tolist()]
        return [descs[k * n: (k + 1) * n] for k in range(N)]

    @torch.no_grad()
    def logprob(self, source: torch.Tensor, descs: list[Description], budget: int) -> np.ndarray:
        """log r_c(h|x): tokens of h, plus <eos> when h stops before the budget."""
        v = self.vocab
        dec_in = data.pad_batch([[v.stoi[data.budget_token(budget)]] + v.encode(h)
                                 for h in descs]).to(self.device)
        tgt = data.pad_batch([v.encode(h) + ([v.stoi[data.EOS]] if len(h) < budget else [0])
                              for h in descs]).to(self.device)
        self.model.eval()
        return (-self.model.nll(source, dec_in, tgt)).cpu().numpy()


class _DescribedModality:
    """Batched description sampling and scoring shared by the world modalities; subclasses
    provide `_src(idx)`, `describer`, `keys` and `batch`."""

    def describe(self, idx, budget, n, temperature, seed):
        out = []
        for s in range(0, len(idx), self.batch):
            part = idx[s: s + self.batch]
            out += self.describer.sample(self._src(part), [self.keys[i] for i in part], budget,
                                         n, temperature, seed)
        return out

    def desc_logprob(self, idx, descs, budget):
        return np.concatenate([self.describer.logprob(self._src(idx[s: s + self.batch]),
                                                      descs[s: s + self.batch], budget)
                               for s in range(0, len(idx), self.batch)])


class WorldImageModality(_DescribedModality):
    """Images + the trained image describer and text-conditioned diffusion likelihood."""

    def __init__(self, system: CCDAESystem, images: torch.Tensor, vocab: data.Vocab,
                 elbo_timesteps: int = 10, elbo_weighting: str = "elbo", seed: int = 0,
                 batch: int = 128):
        self.system, self.vocab, self.batch = system, vocab, batch
        self.device = next(system.parameters()).device
        assert images.ndim == 4 and images.shape[1] == 3, images.shape
        self.images = images.float()
        self.keys = [img.numpy().tobytes() for img in self.images]
        self.describer = _SeqDescriber(system.image_describer, vocab, self.device)
        lik = system.image_likelihood
        self.timesteps = diffusion.stratified_timesteps(len(lik.alpha_bar), elbo_timesteps)
        self.noise = torch.randn((len(self.timesteps),) + tuple(images.shape[1:]),
                                 generator=torch.Generator().manual_seed(seed)).to(self.device)
        self.weights = diffusion.elbo_weights(lik.alpha_bar, elbo_weighting).to(self.device)

    def _src(self, idx: list[int]) -> torch.Tensor:
        return self.images[idx].to(self.device)

    @torch.no_grad()
    def nll(self, idx, descs):
        lik = self.system.image_likelihood.eval()
        out = []
        for s in range(0, len(idx), self.batch):
            x0 = self._src(idx[s: s + self.batch]) * 2 - 1
            cond = data.condition_ids(descs[s: s + self.batch], self.vocab).to(self.device)
            memory, pad = lik.cond_encoder(cond)
            mask = (~pad).float()

            def eps_fn(x_t, t, memory=memory, mask=mask):
                return lik.unet(x_t, t, encoder_hidden_states=memory,
                                encoder_attention_mask=mask).sample

            out.append(diffusion.negative_elbo(eps_fn, x0, self.timesteps, self.noise,
                                               lik.alpha_bar, self.weights).cpu())
        return torch.cat(out).numpy()



class WorldTextModality(_DescribedModality):
    """Sentences + the trained text describer and the description-conditioned LM."""

    def __init__(self, system: CCDAESystem, texts: list[str], desc_vocab: data.Vocab,
                 text_vocab: data.Vocab, batch: int = 256):
        self.system, self.texts, self.batch = system, list(texts), batch
        self.dvocab, self.tvocab = desc_vocab, text_vocab
        self.device = next(system.parameters()).device
        data.text_ids(self.texts, text_vocab)  # raises on empty texts
        self.keys = [t.encode() for t in self.texts]
        self.describer = _SeqDescriber(system.text_describer, desc_vocab, self.device)

    def _src(self, idx: list[int]) -> torch.Tensor:
        return data.text_ids([self.texts[i] for i in idx], self.tvocab).to(self.device)

    @torch.no_grad()
    def nll(self, idx, descs):
        lm = self.system.text_likelihood.eval()
        tv, out = self.tvocab, []
        for s in range(0, len(idx), self.batch):
            words = [self.texts[i].split() for i in idx[s: s + self.batch]]
            dec_in = data.pad_batch([[tv.stoi[data.BOS]] + tv.encode(w) for w in words])
            tgt = data.pad_batch([tv.encode(w) + [tv.stoi[data.EOS]] for w in words])
            cond = data.condition_ids(descs[s: s + self.batch], self.dvocab)
            out.append(lm.nll(cond.to(self.device), dec_in.to(self.device),
                              tgt.to(self.device)).cpu())
        return torch.cat(out).numpy()
