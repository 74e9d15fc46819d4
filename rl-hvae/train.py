"""Train a hierarchical VAE (plain ELBO, free bits, or the paper's RL objective).

    python train.py --config configs/tiny.toml [--field value ...]
"""

from __future__ import annotations

import sys

from rl_hvae.config import parse_config
from rl_hvae.engine import fit


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    return fit(cfg)


if __name__ == "__main__":
    main()
