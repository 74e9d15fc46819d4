"""`make reproduce-ccdae-similarity`: the paper's central comparison, small (CPU, <= 15 min).

Trains the stand-ins on the procedural world (configs/reproduce.toml), scores world pairs with
CC:DAE and every baseline, and writes runs/reproduce/claim.{md,json} and a PNG figure.
Claim (abstract): CC:DAE tracks conceptual similarity better than embedding and
perceptual baselines, on image-image and text-text pairs.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    from ccdae_similarity.config import parse_config
    from ccdae_similarity.engine import evaluate, fit

    root = Path(__file__).parent
    argv = sys.argv[1:] if argv is None else argv
    cfg = parse_config(["--config", str(root / "configs" / "reproduce.toml"),
                        "--out_dir", "runs/reproduce", *argv])
    shutil.rmtree(cfg.out_dir, ignore_errors=True)
    fit(cfg)
    res = evaluate(Path(cfg.out_dir) / "ckpt" / "last.pt")
    cols = ("spearman", "kendall", "two_afc", "motivating_ranking_acc")
    lines = ["| modality | method | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    verdict = {}
    for kind in ("image", "text"):
        for method, row in res[kind].items():
            lines.append(f"| {kind} | {method} | "
                         + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
        base = {m: r["spearman"] for m, r in res[kind].items() if not m.startswith("ccdae")}
        best = max(base, key=base.get)
        verdict[kind] = {"ccdae_spearman": res[kind]["ccdae"]["spearman"],
                         "best_baseline": best, "best_baseline_spearman": base[best],
                         "ccdae_beats_all_baselines": res[kind]["ccdae"]["spearman"] > base[best]}
    table = "\n".join(lines)
    out = Path(cfg.out_dir)
    (out / "claim.md").write_text(table + "\n\n" + json.dumps(verdict, indent=2) + "\n")
    (out / "claim.json").write_text(json.dumps({"table": res, "verdict": verdict}, indent=2))
    shutil.copy(out / "eval" / "correlations.png", out / "claim.png")
    print(table)
    print(json.dumps(verdict, indent=2))
    return {"verdict": verdict, "table": {k: res[k] for k in ("image", "text")}}


if __name__ == "__main__":
    from ccdae_similarity.runtime import cli

    cli(main)
