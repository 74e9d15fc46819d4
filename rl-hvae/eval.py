"""Evaluate a checkpoint: IW NLL, ELBO, per-level KL, active units, I(x; z_l), SVM accuracy.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--iw_samples 1000] [--max_examples 0]
Writes <run>/eval/val.json, levels.png and skip_reconstructions.png.
"""

from __future__ import annotations

import argparse
import json
import sys

from rl_hvae.engine import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--iw_samples", type=int, default=None, help="default: the run's config")
    parser.add_argument("--max_examples", type=int, default=None, help="0 = whole split")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    out = evaluate(args.ckpt, args.iw_samples, args.max_examples, device_name=args.device)
    summary = {k: v for k, v in out.items() if k != "levels"}
    print(json.dumps(summary, indent=2))
    for lv in out["levels"]:
        print(f"z{lv['level']}: KL {lv['kl']:.2f}  AU {lv['active_units']}/{lv['units']}  "
              f"MI {lv['mutual_information']:.2f}  SVM {lv['svm_accuracy']:.3f}")
    return out


if __name__ == "__main__":
    main()
