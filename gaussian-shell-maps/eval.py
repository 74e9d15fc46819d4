"""Evaluate a run: `python eval.py --ckpt runs/demo/ckpt/last.pt [--num_images N] [--out_dir D]`.

Writes <run>/eval/metrics.json (FID, KID, PCK, multi-view PSNR, renders/s at 512^2) and figures
(samples.png, turntable.png, repose.png) plus a 3DGS .ply of one generated human.
"""

from __future__ import annotations

import argparse
import json
import sys

from gaussian_shell_maps.engine import evaluate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="<run>/ckpt/last.pt")
    parser.add_argument("--num_images", type=int, default=None, help="images for FID/KID")
    parser.add_argument("--out_dir", default=None, help="default: <run>/eval")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    result = evaluate(args.ckpt, args.out_dir, args.num_images)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
