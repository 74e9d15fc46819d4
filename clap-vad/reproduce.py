"""`make reproduce-clap-vad`: the paper's central comparison, small, on synthetic features (CPU).

For each data organisation (random, event, scene) it trains CLAP collaboratively (Flower, FedAvg)
and every participant alone (local-only, mean AUC over participants on the common test set); the
centralised model is trained once. On the scene split it also runs FedProx and SCAFFOLD (the
README table of the official repo). Writes runs/reproduce/results.{json,md} and results.png.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from clap_vad.config import parse_config
from clap_vad.engine import fit


def run(cfg, name: str, out: Path) -> dict:
    start = time.perf_counter()
    res = fit(dataclasses.replace(cfg, out_dir=str(out / name)))
    return {"run": name, "auc": res["auc"], "ap": res["ap"], "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> dict:
    torch.set_num_threads(1)
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_config(["--config", "configs/tiny.toml", "--steps", "10", "--eval_every", "10",
                        "--device", "cpu", *argv])
    out = Path("runs/reproduce")
    if out.exists():
        import shutil

        shutil.rmtree(out)
    rows = {"central": run(dataclasses.replace(cfg, mode="central"), "central", out)}
    for split in ("random", "event", "scene"):
        c = dataclasses.replace(cfg, split=split)
        rows[f"{split}/collaborative"] = run(c, f"{split}_collab", out)
        rows[f"{split}/local"] = run(dataclasses.replace(c, mode="local"), f"{split}_local", out)
    for strategy in ("fedprox", "scaffold"):
        c = dataclasses.replace(cfg, split="scene", fl_strategy=strategy)
        rows[f"scene/collaborative-{strategy}"] = run(c, f"scene_{strategy}", out)
    central = rows["central"]["auc"]
    lines = ["| setting | frame AUC | AP | share of central AUC above chance | s |",
             "|---|---|---|---|---|"]
    for key, r in rows.items():
        share = (r["auc"] - 0.5) / (central - 0.5)
        lines.append(f"| {key} | {r['auc']:.3f} | {r['ap']:.3f} | {share:.2f} | {r['seconds']:.0f} |")
    verdict = {split: {"collab_beats_local": rows[f"{split}/collaborative"]["auc"]
                       > rows[f"{split}/local"]["auc"],
                       "collab_recovers": (rows[f"{split}/collaborative"]["auc"] - 0.5)
                       / (central - 0.5)} for split in ("random", "event", "scene")}
    table = "\n".join(lines)
    print(f"\nCLAP claim check ({cfg.steps} rounds x {cfg.local_epochs} local epochs, synthetic)")
    print(table)
    print(json.dumps(verdict, indent=1))
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({"rows": rows, "verdict": verdict}, indent=2))
    _figure(rows, out / "results.png")
    return {"rows": rows, "verdict": verdict}


def _figure(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2))
    splits = ["random", "event", "scene"]
    for i, (kind, color) in enumerate((("local", "tab:gray"), ("collaborative", "tab:blue"))):
        ax.bar([s + (i - 0.5) * 0.35 for s in range(3)],
               [rows[f"{sp}/{kind}"]["auc"] for sp in splits], 0.35, label=kind, color=color)
    ax.axhline(rows["central"]["auc"], color="k", ls="--", label="central")
    ax.axhline(0.5, color="r", ls=":", lw=0.8, label="chance")
    ax.set_xticks(range(3), splits)
    ax.set(ylabel="frame-level AUC", ylim=(0, 1), title="CLAP on synthetic features")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
