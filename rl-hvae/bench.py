"""Throughput: training updates/s (plain ELBO vs. RL objective) and evaluation images/s, for the
tiny (8x8 digits) and paper (28x28, 64 channels, released network) presets.

    python bench.py [--repeats 5]                  # CPU table
    python bench.py --gpu [--json PATH]            # the same figures on CUDA, as JSON
The official code cannot be installed here (it needs its own package and data module), so the
reference is the plain-ELBO update of the same network: the table reports the RL overhead ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from rl_hvae.config import load_config
from rl_hvae.data import ImageSet
from rl_hvae.engine import build_model, train_step
from rl_hvae.metrics import iw_log_likelihood
from rl_hvae.runtime import cli

HERE = Path(__file__).resolve().parent


def _time(fn, repeats: int, sync=lambda: None) -> float:
    fn()  # warm-up (and the data-dependent init of the released network)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def bench_config(name: str, repeats: int, device: torch.device) -> dict[str, float]:
    cfg = load_config(HERE / "configs" / f"{name}.toml")
    size = 8 if cfg.data_name == "digits" else 28
    x = torch.rand(cfg.batch_size, 1, size, size).bernoulli().to(device)
    data = ImageSet(x.cpu(), torch.zeros(len(x), dtype=torch.int64))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    out = {}
    repeats = max(repeats, 5)  # whole cycles of the 5 decision steps
    for method in ("hvae", "rl"):
        torch.manual_seed(0)
        model = build_model(cfg, data).to(device)
        model.data_init(x)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        run = dataclasses.replace(cfg, method=method)
        counter = iter(range(10**9))
        sec = _time(lambda: train_step(model, opt, x, next(counter), run), repeats, sync)
        out[f"{method}_steps_per_s"] = 1.0 / sec
    model.eval()
    k = 10
    sec = _time(lambda: iw_log_likelihood(model, x, k=k), max(1, repeats // 2), sync)
    out.update(eval_images_per_s=len(x) / sec, eval_k=k, batch=cfg.batch_size,
               arch_skips=cfg.arch_skips)
    if device.type == "cuda":
        out["cuda_max_mem_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="the figures on CUDA")
    parser.add_argument("--json", default="", help="with --gpu: write the figures here")
    args = parser.parse_args(argv)
    if args.gpu and not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    device = torch.device("cuda" if args.gpu else "cpu")
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}")
    print(f"{'config':<7}{'batch':>6}{'ELBO step/s':>13}{'RL step/s':>11}{'RL/ELBO time':>14}"
          f"{'eval img/s (IW k=10)':>22}")
    results = {}
    for name in ("tiny", "paper"):
        r = bench_config(name, args.repeats if name == "tiny" else max(1, args.repeats // 2),
                         device)
        ratio = r["hvae_steps_per_s"] / r["rl_steps_per_s"]
        print(f"{name:<7}{r['batch']:>6}{r['hvae_steps_per_s']:>13.2f}{r['rl_steps_per_s']:>11.2f}"
              f"{ratio:>13.2f}x{r['eval_images_per_s']:>22.1f}")
        results[name] = {**r, "rl_time_ratio": ratio}
    print("RL/ELBO time: seconds per RL update / seconds per ELBO update, averaged over "
          "the decision steps t = 0..L-1 (an RL update at step t decodes L - t skip paths)")
    if args.gpu and args.json:
        Path(args.json).write_text(json.dumps({"device": torch.cuda.get_device_name(), **{
            f"{n}_{k}": v for n, r in results.items() for k, v in r.items()}}, indent=2))
    return results


if __name__ == "__main__":
    cli(main)
