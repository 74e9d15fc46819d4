"""Evaluate a checkpoint: `python eval.py --ckpt runs/demo/ckpt/last.pt` -> runs/demo/eval/."""

from __future__ import annotations

import argparse

from pathdino.evaluation import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    args = parser.parse_args(argv)
    return evaluate(args.ckpt)


if __name__ == "__main__":
    main()
