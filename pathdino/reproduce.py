"""`make reproduce-pathdino`: the paper's central comparison, small and on CPU.

Trains the tiny PathDino twice on the same IHC + synthetic data, seed and steps, with and without
HistoRotate, evaluates both (and the untrained network) on rotated test patches (kNN, linear probe,
rotation consistency) and at WSI level with FPS vs exhaustive tiling. Writes
runs/reproduce/results.{md,json} and runs/reproduce/rotation.png.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pathdino.config import parse_config
from pathdino.engine import fit
from pathdino.evaluation import evaluate
from pathdino.runtime import cli

ROWS = {"untrained": ["--steps", "0"], "dino (no rotation)": ["--historotate", "false"],
        "pathdino + HistoRotate": ["--historotate", "true"]}
COLUMNS = [("synthetic", "knn_top1_acc"), ("synthetic", "knn_rotated_top1_acc"),
           ("synthetic", "knn_rotated_mv5_f1"), ("synthetic", "linear_rotated_acc"),
           ("synthetic", "rotation_consistency_centred"), ("ihc", "knn_rotated_top1_acc"),
           ("ihc", "rotation_consistency_centred")]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--out", default="runs/reproduce")
    args = parser.parse_args(argv)
    os.environ.setdefault("TQDM_DISABLE", "1")
    out = Path(args.out)
    start = time.perf_counter()
    # the three rows are independent: one process each (1 thread), results in ROWS order
    with ProcessPoolExecutor(max_workers=3, mp_context=mp.get_context("spawn")) as pool:
        futures = {name: pool.submit(_run_row, name, extra, args.steps, str(out))
                   for name, extra in ROWS.items()}
        results = {name: f.result() for name, f in futures.items()}
    print(f"[reproduce] trained and evaluated in {time.perf_counter() - start:.0f} s")
    head = "| model | " + " | ".join(f"{s} {m}" for s, m in COLUMNS) + " | WSI acc FPS | " \
        "WSI acc exhaustive |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]
    for name, r in results.items():
        cells = [f"{r['patch'][s][m]:.3f}" for s, m in COLUMNS]
        cells += [f"{r['wsi'][k]['wsi_mv_acc']:.3f}" for k in ("fps", "exhaustive")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    w = results["pathdino + HistoRotate"]["wsi"]
    lines += ["", ("| WSI patch selection | patches / slide | seconds (select + read + embed, "
              "all slides) |"), "|---|---|---|"]
    lines += [f"| {k} | {w[k]['patches_per_slide']:.1f} | {w[k]['seconds']:.2f} |"
              for k in ("fps", "exhaustive")]
    table = "\n".join(lines)
    (out / "results.md").write_text(f"steps {args.steps}, tiny config\n\n{table}\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _figure(results, out / "rotation.png")
    print(table)
    print(f"[reproduce] total {time.perf_counter() - start:.0f} s -> {out}/results.md")
    return results


def _run_row(name: str, extra: list[str], steps: int, out: str) -> dict:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")
    run = Path(out) / name.split()[0].replace("+", "")
    shutil.rmtree(run, ignore_errors=True)  # a fresh run, never a resume
    cfg = parse_config(["--config", "configs/tiny.toml", "--steps", str(steps),
                        "--out_dir", str(run), "--eval_every", "0", *extra])
    fit(cfg)
    return evaluate(run / "ckpt" / "last.pt")


def _figure(results: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(results)
    for i, (s, m) in enumerate([("synthetic", "knn_rotated_top1_acc"),
                                ("synthetic", "rotation_consistency_centred")]):
        vals = [results[n]["patch"][s][m] for n in names]
        axes[i].bar(range(len(names)), vals, color=["grey", "tab:blue", "tab:green"])
        axes[i].set_xticks(range(len(names)), names, fontsize=8)
        axes[i].set_title(f"{s}: {m}", fontsize=9)
        for j, v in enumerate(vals):
            axes[i].text(j, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    cli(main)
