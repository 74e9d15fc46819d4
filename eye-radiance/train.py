"""Train the scene radiance field from cornea reflections (+ iris texture, + pose refinement).

python train.py --config configs/tiny.toml [--field value ...]
"""

from __future__ import annotations

import sys

from eye_radiance.config import parse_config
from eye_radiance.engine import fit


def main(argv: list[str] | None = None) -> dict:
    return fit(parse_config(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
