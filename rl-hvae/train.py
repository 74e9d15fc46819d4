"""Train a hierarchical VAE (plain ELBO, free bits, or the paper's RL objective).

    python train.py --config configs/tiny.toml [--field value ...] [--debug]
"""

from __future__ import annotations

from rl_hvae.config import parse_config
from rl_hvae.engine import fit
from rl_hvae.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    return fit(parse_config(argv or []))


if __name__ == "__main__":
    cli(main)
