"""Train a Gaussian Shell Maps GAN: `python train.py --config configs/tiny.toml [--field value]`.

User errors print one line `error: ...` and exit with status 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

from gaussian_shell_maps.config import parse_config
from gaussian_shell_maps.engine import fit
from gaussian_shell_maps.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    return fit(parse_config(argv))


if __name__ == "__main__":
    cli(main)
