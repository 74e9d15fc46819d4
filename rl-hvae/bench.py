"""Throughput on this machine: training updates/s (plain ELBO vs. RL objective) and evaluation
images/s, for the tiny (8x8 digits) and paper (28x28, 64 channels) architectures.

    python bench.py [--repeats 5]
The official code cannot be installed here (it needs its own package and data module), so the
reference is the plain-ELBO step of the same network: the table reports the RL overhead ratio.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

from rl_hvae.config import load_config
from rl_hvae.data import ImageSet
from rl_hvae.engine import build_model, train_step
from rl_hvae.metrics import iw_log_likelihood

HERE = Path(__file__).resolve().parent


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_config(name: str, repeats: int) -> dict[str, float]:
    cfg = load_config(HERE / "configs" / f"{name}.toml")
    size = 8 if cfg.data_name == "digits" else 28
    x = torch.rand(cfg.batch_size, 1, size, size).bernoulli()
    data = ImageSet(x, torch.zeros(len(x), dtype=torch.int64))
    out = {}
    repeats = max(repeats, 5)  # whole cycles of the 5 decision steps
    for method in ("hvae", "rl"):
        torch.manual_seed(0)
        model = build_model(cfg, data)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        run = dataclasses.replace(cfg, method=method)
        counter = iter(range(10**9))
        sec = _time(lambda: train_step(model, opt, x, next(counter), run), repeats)
        out[f"{method}_steps_per_s"] = 1.0 / sec
    model.eval()
    k = 10
    sec = _time(lambda: iw_log_likelihood(model, x, k=k), max(1, repeats // 2))
    out["eval_images_per_s"] = len(x) / sec
    out["eval_k"] = k
    out["batch"] = cfg.batch_size
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu")
    print(f"{'config':<7}{'batch':>6}{'ELBO step/s':>13}{'RL step/s':>11}{'RL/ELBO time':>14}"
          f"{'eval img/s (IW k=10)':>22}")
    results = {}
    for name in ("tiny", "paper"):
        r = bench_config(name, args.repeats if name == "tiny" else max(1, args.repeats // 2))
        ratio = r["hvae_steps_per_s"] / r["rl_steps_per_s"]
        print(f"{name:<7}{r['batch']:>6}{r['hvae_steps_per_s']:>13.2f}{r['rl_steps_per_s']:>11.2f}"
              f"{ratio:>13.2f}x{r['eval_images_per_s']:>22.1f}")
        results[name] = {**r, "rl_time_ratio": ratio}
    print("RL/ELBO time: seconds per RL update / seconds per ELBO update, averaged over "
          "the decision steps t = 0..L-1 (an RL update at step t decodes L - t skip paths)")
    return results


if __name__ == "__main__":
    main()
