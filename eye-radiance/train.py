"""Train the scene radiance field from cornea reflections (+ iris texture, + pose refinement)
on an official capture folder or the synthetic one.

    python train.py --config configs/tiny.toml [--field value ...] [--debug]
"""

from __future__ import annotations

from eye_radiance.config import parse_config
from eye_radiance.engine import fit
from eye_radiance.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    return fit(parse_config(argv))


if __name__ == "__main__":
    cli(main)
