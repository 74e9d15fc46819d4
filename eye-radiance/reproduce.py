"""Claim check (CPU, <= 15 min): the paper's ablation on one synthetic capture in the official
layout: full method vs no texture decomposition vs no pose refinement vs a spherical cornea,
over seeds (mean +/- std). Writes <out>/results.{md,json} and <out>/reproduce.png.

    python reproduce.py [--steps 100] [--seeds 3] [--out runs/reproduce]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from eye_radiance.claim import run_variants, write_report
from eye_radiance.runtime import cli

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="runs/reproduce")
    args = parser.parse_args(argv)
    out = Path(args.out)
    results = run_variants(HERE / "configs" / "tiny.toml", out, args.steps, args.seeds)
    print(write_report(results, out, args.steps))
    return results


if __name__ == "__main__":
    cli(main)
