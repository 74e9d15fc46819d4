"""Evaluate a run: python eval.py --ckpt runs/demo/ckpt/last.pt [--split test] [--out_dir DIR].

Samples motions for held-out clips, decodes meshes and writes <run>/eval/<split>.json with lip
vertex error, FDD, diversity and lip-sync correlation, plus mouth_vs_audio.png, frames.png and
sequence.gif.
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> dict:
    from facetalk.engine import evaluate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--out_dir", default=None)
    parser.add_argument("--no_figures", action="store_true")
    args = parser.parse_args(argv)
    result = evaluate(args.ckpt, args.out_dir, args.split, figures=not args.no_figures)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
