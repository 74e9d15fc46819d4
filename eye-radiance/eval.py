"""Evaluate a run: reconstruction of the cornea pixels; on synthetic captures novel views of the
reflected scene (PSNR/SSIM/LPIPS), pose errors before and after refinement, iris texture error;
figures in <run>/eval/.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--debug]
"""

from __future__ import annotations

import argparse
import json

from eye_radiance.engine import evaluate
from eye_radiance.runtime import ConfigError, cli


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], exit_on_error=False)
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--eval_size", type=int, default=0, help="novel-view size (0: config)")
    parser.add_argument("--eval_rays", type=int, default=0, help="cornea rays scored (0: all)")
    try:
        args, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as err:
        raise ConfigError(str(err), "usage: eval.py --ckpt <run>/ckpt/last.pt") from None
    if unknown:
        raise ConfigError(f"unknown arguments {unknown}",
                          "usage: eval.py --ckpt <run>/ckpt/last.pt")
    out = evaluate(args.ckpt, eval_size=args.eval_size, max_rays=args.eval_rays)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    cli(main)
