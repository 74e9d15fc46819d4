import numpy as np
import torch

from ccdae_similarity import data, world
from ccdae_similarity.engine import train_step


def test_one_backward_all_grads_finite(tiny_system, tiny_cfg):
    rng = np.random.default_rng(0)
    batch = data.sample_world_batch(rng, 4, tiny_cfg.image_size, 0.03)
    tiny_system.train()
    losses = train_step(tiny_system, batch, tiny_cfg, rng, torch.Generator().manual_seed(0))
    assert set(losses) == {"describer_image", "describer_text", "diffusion", "text_lm", "clip"}
    sum(losses.values()).backward()
    for name, p in tiny_system.named_parameters():
        if p.requires_grad and p.grad is not None:
            assert torch.isfinite(p.grad).all(), name
    n_without = [n for n, p in tiny_system.named_parameters() if p.grad is None]
    assert not n_without, n_without[:5]


def test_sample_shapes_and_eos_padding(tiny_system):
    dv = data.description_vocab()
    model = tiny_system.image_describer
    x = torch.rand(3, 3, 16, 16)
    start = torch.full((3, 1), dv.stoi["<c4>"])
    gumbel = torch.zeros(3, 4, len(dv))
    banned = torch.zeros(len(dv), dtype=torch.bool)
    out = model.sample(x, start, 4, gumbel, 0.0, banned, dv.stoi[data.EOS])
    assert out.shape == (3, 4)
    for row in out.tolist():  # after an <eos> only padding follows; never <eos> first
        assert row[0] != dv.stoi[data.EOS]
        if dv.stoi[data.EOS] in row:
            k = row.index(dv.stoi[data.EOS])
            assert all(v == 0 for v in row[k + 1:])


def test_text_likelihood_nll_is_sum_over_tokens(tiny_system):
    dv, tv = data.description_vocab(), data.text_vocab()
    text = ["one", "red", "circle", "on", "the", "left", "in", "the", "day"]
    cond = data.condition_ids([("day", "circle")], dv)
    dec_in = data.pad_batch([[tv.stoi[data.BOS]] + tv.encode(text)])
    tgt = data.pad_batch([tv.encode(text) + [tv.stoi[data.EOS]]])
    lm = tiny_system.text_likelihood
    nll = lm.nll(cond, dec_in, tgt)
    logits = lm.decoder(dec_in, *lm.encoder(cond))
    manual = -torch.log_softmax(logits, -1)[0, torch.arange(tgt.shape[1]), tgt[0]].sum()
    torch.testing.assert_close(nll[0], manual)
    assert world.LEVELS == 6
