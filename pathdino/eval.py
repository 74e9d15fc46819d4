"""Evaluate a checkpoint: `python eval.py --ckpt runs/demo/ckpt/last.pt` -> runs/demo/eval/.

Evaluation-size and data keys may follow as `--key value` (e.g. `--data_num_eval_per_class 5
--data_eval_root /data/patches`); the model always comes from the checkpoint.
"""

from __future__ import annotations

import argparse

from pathdino.config import parse_overrides
from pathdino.evaluation import evaluate
from pathdino.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--out_dir", default="", help="default: <run>/eval")
    args, rest = parser.parse_known_args(argv)
    return evaluate(args.ckpt, parse_overrides(rest), args.out_dir or None)


if __name__ == "__main__":
    cli(main)
