"""Evaluate a run: `python eval.py --ckpt runs/demo/ckpt/last.pt` -> runs/demo/eval/test.json + PNGs."""

from __future__ import annotations

import argparse
import json

from clap_vad.runtime import ConfigError, cli, load_checkpoint


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one-line UserError instead of usage + exit
        raise ConfigError(f"eval.py: {message}", "usage: eval.py --ckpt <run>/ckpt/last.pt "
                          "[--device auto|cpu|cuda] [--data_root DIR]")


def main(argv: list[str] | None = None) -> dict:
    parser = _Parser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="<run>/ckpt/last.pt")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data_root", default=None, help="replaces the data_root of the checkpoint")
    args = parser.parse_args(argv or [])
    load_checkpoint(args.ckpt)  # refuse a bad file before the heavy imports below
    from clap_vad.evaluation import evaluate

    result = evaluate(args.ckpt, args.device, args.data_root)
    print(json.dumps({k: v for k, v in result.items() if k != "per_participant"}, indent=2))
    return result


if __name__ == "__main__":
    cli(main)
