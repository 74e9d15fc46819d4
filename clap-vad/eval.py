"""Evaluate a run: `python eval.py --ckpt runs/demo/ckpt/last.pt` -> runs/demo/eval/test.json + PNGs."""

from __future__ import annotations

import argparse
import json
import sys

from clap_vad.evaluation import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="<run>/ckpt/last.pt")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = evaluate(args.ckpt, args.device)
    print(json.dumps({k: v for k, v in result.items() if k != "per_participant"}, indent=2))
    return result


if __name__ == "__main__":
    main()
