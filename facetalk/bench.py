"""Throughput (one run, same machine): sampling fps DDPM vs DDIM, train-step time, audio encoding.

Prints each figure beside its reference as a ratio:
* generated frames / s: DDIM (diff_sample_steps) vs DDPM (all diff_train_steps) -> speed-up;
* denoiser train step: diffusion vs the regression baseline (same backbone);
* audio encoding time per second of audio: the small stand-in vs a wav2vec2-base-sized encoder
  (random weights, same compute as the real facebook/wav2vec2-base).
Model sizes are those of configs/tiny.toml unless --config is given.
`python bench.py --gpu [--json PATH]`: CUDA figures at the paper preset's sizes (make gpu-check).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def gpu_figures(json_path: str = "") -> dict:
    """CUDA figures at the paper preset's model sizes (random weights, wav2vec2-base-sized
    encoder): DDIM-50 generated frames/s for 10 samples, train steps/s at the paper batch."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    from facetalk.config import parse_config
    from facetalk.diffusion import make_scheduler
    from facetalk.engine import generate, loss_terms
    from facetalk.model import build_model

    if not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    dev = torch.device("cuda")
    cfg = parse_config(["--config", str(ROOT / "configs" / "paper.toml"),
                        "--audio_encoder_path", "", "--head_name", "procedural"])
    torch.manual_seed(0)
    model = build_model(cfg)
    model.audio_encoder.wav2vec = Wav2Vec2Model(Wav2Vec2Config())  # paper's encoder size
    model.audio_encoder.proj = torch.nn.Linear(768, cfg.model_dim)
    model = model.to(dev)
    frames = cfg.data_clip_frames
    wave = torch.randn(frames * cfg.data_sample_rate // cfg.data_fps)
    z_id = torch.zeros(cfg.data_id_dim)
    model.eval()

    def sync_time(fn, repeat: int) -> float:
        fn()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / repeat

    with torch.no_grad():
        sec = sync_time(lambda: generate(model, cfg, wave, z_id, frames, cfg.eval_samples), 2)
    out = {"ddim_frames_per_s_cuda": frames * cfg.eval_samples / sec}
    model.train()
    sched = make_scheduler("ddpm", cfg.diff_train_steps, cfg.diff_beta_schedule,
                           cfg.diff_prediction)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    b = cfg.batch_size
    batch = {"audio": torch.randn(b, wave.numel(), device=dev),
             "codes": torch.randn(b, frames, cfg.data_exp_dim, device=dev),
             "id_code": torch.randn(b, cfg.data_id_dim, device=dev),
             "speaker": torch.zeros(b, dtype=torch.long, device=dev)}

    def step():
        loss = loss_terms(model, sched, batch, cfg, None, torch.Generator().manual_seed(0))
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()

    out["train_steps_per_s_cuda"] = 1.0 / sync_time(step, 3)
    out["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(dev) / 2**20
    for k, v in out.items():
        print(f"{k:32s} {v:12.3f}")
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=2))
    return out


def main(argv: list[str] | None = None) -> dict:
    import torch

    from facetalk.audio import AudioEncoder
    from facetalk.config import parse_config
    from facetalk.data import make_sequences, sample_batch
    from facetalk.diffusion import make_scheduler
    from facetalk.engine import _set_code_stats, generate, loss_terms
    from facetalk.head import build_head
    from facetalk.model import build_model

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--gpu" in argv:
        json_path = argv[argv.index("--json") + 1] if "--json" in argv else ""
        return gpu_figures(json_path)
    if "--config" not in argv:
        argv = ["--config", str(ROOT / "configs" / "tiny.toml")] + argv
    cfg = parse_config(argv)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    frames = 4 * cfg.data_fps  # a 4 s clip
    wave, z_id = torch.randn(4 * cfg.data_sample_rate), torch.zeros(cfg.data_id_dim)
    out: dict = {"torch_threads": torch.get_num_threads(), "clip_frames": frames}
    for sampler, steps in (("ddpm", cfg.diff_train_steps), ("ddim", cfg.diff_sample_steps)):
        sec = _time(lambda sampler=sampler, steps=steps: generate(
            model, cfg, wave, z_id, frames, 1, sampler=sampler, steps=steps), repeat=1)
        out[f"{sampler}_{steps}_steps_frames_per_s"] = frames / sec
    ddpm, ddim = (out[f"ddpm_{cfg.diff_train_steps}_steps_frames_per_s"],
                  out[f"ddim_{cfg.diff_sample_steps}_steps_frames_per_s"])
    out["ddim_speedup_over_ddpm"] = ddim / ddpm

    seqs = make_sequences(cfg, "train")[:8]
    head = build_head(cfg.head_name, cfg.data_id_dim, cfg.data_exp_dim, cfg.head_resolution,
                      cfg.head_path)
    sched = make_scheduler("ddpm", cfg.diff_train_steps, cfg.diff_beta_schedule,
                           cfg.diff_prediction)
    for method in ("diffusion", "regression"):
        mcfg = parse_config(argv + ["--method", method])
        net = build_model(mcfg).train()
        _set_code_stats(net, seqs)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        batch = sample_batch(seqs, cfg.batch_size, cfg.data_clip_frames, cfg.data_sample_rate,
                             cfg.data_fps, torch.Generator().manual_seed(0))

        def step(net=net, opt=opt, batch=batch, mcfg=mcfg):
            loss = loss_terms(net, sched, batch, mcfg, head, torch.Generator().manual_seed(0))
            opt.zero_grad()
            loss["loss"].backward()
            opt.step()

        out[f"{method}_train_step_ms"] = 1000 * _time(step, repeat=5)
    out["train_step_ratio_diffusion_over_regression"] = (out["diffusion_train_step_ms"]
                                                         / out["regression_train_step_ms"])
    audio = torch.randn(1, 4 * cfg.data_sample_rate)
    for name, kwargs in (("standin", {"hidden": cfg.audio_hidden, "layers": cfg.audio_layers}),
                         ("w2v2_base_size", {"hidden": 768, "layers": 12})):
        enc = AudioEncoder(cfg.model_dim, **kwargs).eval()
        if name == "w2v2_base_size":  # base model's CNN width is 512
            from transformers import Wav2Vec2Config, Wav2Vec2Model

            enc.wav2vec = Wav2Vec2Model(Wav2Vec2Config()).eval()
            enc.proj = torch.nn.Linear(768, cfg.model_dim)
        with torch.no_grad():
            sec = _time(lambda enc=enc: enc(audio, frames), repeat=2)
        out[f"audio_{name}_ms_per_audio_s"] = 1000 * sec / 4
    out["audio_base_over_standin"] = (out["audio_w2v2_base_size_ms_per_audio_s"]
                                      / out["audio_standin_ms_per_audio_s"])
    print(f"{'figure':44s} {'value':>12s}")
    for k, v in out.items():
        print(f"{k:44s} {v:12.3f}" if isinstance(v, float) else f"{k:44s} {v:>12}")
    (ROOT / "runs").mkdir(exist_ok=True)
    (ROOT / "runs" / "bench.json").write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    from facetalk.runtime import cli

    cli(main)
