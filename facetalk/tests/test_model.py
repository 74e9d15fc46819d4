import pytest
import torch

from facetalk.model import Denoiser, attention_masks, build_model


def _inputs(gen, b=2, t=12, e=6, d=32, i=4):
    return (torch.randn(b, t, e, generator=gen), torch.tensor([3, 700])[:b],
            torch.randn(b, t, d, generator=gen), torch.randn(b, i, generator=gen))


@pytest.mark.parametrize("window", [0, 2])
def test_causal_denoiser_ignores_future_audio_and_motion(window, gen):
    torch.manual_seed(0)
    net = Denoiser(6, 4, dim=32, layers=2, heads=4, ff=64, causal=True, audio_window=window).eval()
    x, t, audio, z_id = _inputs(gen)
    cut = 7
    audio2, x2 = audio.clone(), x.clone()
    audio2[:, cut:] += 5 * torch.randn(2, 12 - cut, 32, generator=gen)
    x2[:, cut:] += 5.0
    out, out2 = net(x, t, audio, z_id), net(x2, t, audio2, z_id)
    torch.testing.assert_close(out[:, :cut], out2[:, :cut])
    assert (out[:, cut:] - out2[:, cut:]).abs().max() > 1e-3


def test_non_causal_denoiser_sees_future_audio(gen):
    torch.manual_seed(0)
    net = Denoiser(6, 4, dim=32, layers=2, heads=4, ff=64, causal=False, audio_window=0).eval()
    x, t, audio, z_id = _inputs(gen)
    audio2 = audio.clone()
    audio2[:, 7:] += 5.0
    diff = (net(x, t, audio, z_id) - net(x, t, audio2, z_id))[:, :7].abs().max()
    assert diff > 1e-4  # self-attention carries future audio to past frames


def test_alignment_mask_band():
    _, cross = attention_masks(5, 1, causal=False, device=torch.device("cpu"))
    allowed = ~cross
    assert allowed.sum() == 13 and allowed[0, 1] and not allowed[0, 2]
    self_mask, cross_c = attention_masks(5, 1, causal=True, device=torch.device("cpu"))
    assert self_mask[1, 2] and not self_mask[2, 1] and cross_c[1, 2] and not cross_c[2, 1]


def test_guidance_scale_one_equals_conditional(tiny_cfg, gen):
    torch.manual_seed(0)
    model = build_model(tiny_cfg).eval()
    torch.nn.init.normal_(model.denoiser.null_audio)  # make cond and uncond differ
    x, t, audio, z_id = _inputs(gen, e=8, d=32)
    keep = torch.zeros(2, dtype=torch.bool)
    cond = model.denoiser(x, t, audio, z_id, keep)
    uncond = model.denoiser(x, t, audio, z_id, ~keep)
    assert (cond - uncond).abs().max() > 1e-4
    torch.testing.assert_close(model.guided(x, t, audio, z_id, 1.0), cond)
    torch.testing.assert_close(model.guided(x, t, audio, z_id, 0.0), uncond)
    torch.testing.assert_close(model.guided(x, t, audio, z_id, 2.5),
                               uncond + 2.5 * (cond - uncond))


def test_batched_equals_per_sample_and_grads_finite(tiny_cfg, gen):
    torch.manual_seed(0)
    model = build_model(tiny_cfg)
    x, t, audio, z_id = _inputs(gen, e=8, d=32)
    model.eval()
    full = model.denoiser(x, t, audio, z_id)
    for b in range(2):
        torch.testing.assert_close(full[b:b + 1],
                                   model.denoiser(x[b:b + 1], t[b:b + 1], audio[b:b + 1],
                                                  z_id[b:b + 1]))
    model.train()
    feats = model.audio_encoder(torch.randn(2, 16000, generator=gen), 12)
    drop = torch.tensor([False, True])  # one conditional, one unconditional sample
    model.denoiser(x, t, feats, z_id, drop).pow(2).mean().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
