"""Evaluate a checkpoint: the released SVC metric, IW NLL, ELBO, and per level KL, active units,
I(x; z_l) and our SVM accuracy.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--iw_samples 1000] [--max_examples 0] [--debug]
Writes <run>/eval/val.json, levels.png and skip_reconstructions.png.
"""

from __future__ import annotations

import argparse
import json

from rl_hvae.evaluation import evaluate
from rl_hvae.runtime import ConfigError, cli


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one-line user error instead of usage + exit
        raise ConfigError(f"eval.py: {message}", "python eval.py --help")


def main(argv: list[str] | None = None) -> dict:
    parser = _Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--iw_samples", type=int, default=None, help="default: the run's config")
    parser.add_argument("--max_examples", type=int, default=None, help="0 = whole split")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv or [])
    if (args.iw_samples is not None and args.iw_samples < 1) or (args.max_examples or 0) < 0:
        raise ConfigError("--iw_samples must be >= 1 and --max_examples >= 0", "eval.py --help")
    out = evaluate(args.ckpt, args.iw_samples, args.max_examples, device_name=args.device)
    print(json.dumps({k: v for k, v in out.items() if k != "levels"}, indent=2))
    print(f"released metric (SVC on z{len(out['levels'])}, lower latents sampled): "
          f"{out['svm_top_released']:.3f}")
    for lv in out["levels"]:
        print(f"z{lv['level']}: KL {lv['kl']:.2f}  AU {lv['active_units']}/{lv['units']}  "
              f"MI {lv['mutual_information']:.2f}  SVM {lv['svm_accuracy']:.3f}")
    return out


if __name__ == "__main__":
    cli(main)
