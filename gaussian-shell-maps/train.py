"""Train a Gaussian Shell Maps GAN: `python train.py --config configs/tiny.toml [--field value]`."""

from __future__ import annotations

import sys

from gaussian_shell_maps.config import parse_config
from gaussian_shell_maps.engine import fit


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    return fit(cfg)


if __name__ == "__main__":
    main()
