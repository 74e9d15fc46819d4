"""Train one radiance-field family (baseline or the paper's recipe) at scene scale k.

    python train.py --config configs/tiny.toml --out_dir runs/demo
    python train.py --config configs/paper.toml --model_family dvgo --data_scene_scale 10
Every Config field is a `--field value` override (see configs/paper.toml). A user error prints
one line `error: ...` and exits with status 2; add --debug for the traceback.
"""

from __future__ import annotations

from alpha_invariance.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    import sys

    from alpha_invariance.config import parse_config
    from alpha_invariance.engine import fit

    cfg = parse_config(sys.argv[1:] if argv is None else argv)
    return fit(cfg)


if __name__ == "__main__":
    cli(main)
