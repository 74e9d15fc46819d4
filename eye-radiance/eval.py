"""Evaluate a run: novel views of the reflected scene (PSNR/SSIM/LPIPS), pose errors before and
after refinement, iris texture error; figures in <run>/eval/.

    python eval.py --ckpt runs/demo/ckpt/last.pt
"""

from __future__ import annotations

import argparse
import json
import sys

from eye_radiance.engine import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    out = evaluate(args.ckpt)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
