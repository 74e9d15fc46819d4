"""torchrun worker for tests/test_distributed.py: `fit` to 5 RL updates, then again to 10 (a
resume), in one launch (one launch of 2 processes costs most of the test's time)."""

import sys

from rl_hvae.config import parse_config
from rl_hvae.engine import fit

if __name__ == "__main__":
    for steps in ("5", "10"):
        fit(parse_config([*sys.argv[1:], "--steps", steps]))
