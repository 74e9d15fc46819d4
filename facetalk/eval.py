"""Evaluate a run: python eval.py --ckpt runs/demo/ckpt/last.pt [--split test] [--out_dir DIR].

Samples motions for held-out clips, decodes meshes and writes <run>/eval/<split>.json with lip
vertex error, FDD, diversity and lip-sync correlation, plus mouth_vs_audio.png, frames.png and
sequence.gif. A user error prints one line `error: ...` and exits 2 (`--debug`: traceback).
"""

from __future__ import annotations

import argparse
import json

from facetalk.runtime import ConfigError, cli


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage + message and exit
        raise ConfigError(f"eval.py: {message}", "usage: eval.py --ckpt <run>/ckpt/last.pt "
                          "[--split val|test] [--out_dir DIR] [--no_figures]")


def main(argv: list[str] | None = None) -> dict:
    from facetalk.engine import evaluate

    parser = _Parser(description=__doc__)
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--out_dir", default=None)
    parser.add_argument("--no_figures", action="store_true")
    parser.add_argument("--device", default="cpu", help="where motions are sampled (auto|cpu|cuda)")
    args = parser.parse_args(argv or [])
    result = evaluate(args.ckpt, args.out_dir, args.split, figures=not args.no_figures,
                      device=args.device)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli(main)
