"""Evaluate a run: `python eval.py --ckpt runs/demo/ckpt/last.pt [--num_images N] [--out_dir D]`.

Writes <run>/eval/metrics.json (FID, KID, PCK, multi-view PSNR, renders/s at 512^2) and figures
(samples.png, turntable.png, repose.png) plus a 3DGS .ply of one generated human.
User errors print one line `error: ...` and exit with status 2 (`--debug` shows the traceback).
"""

from __future__ import annotations

import argparse
import json

from gaussian_shell_maps.engine import evaluate
from gaussian_shell_maps.runtime import ConfigError, cli


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line through cli(), not argparse's usage + exit
        raise ConfigError(message, "python eval.py --ckpt <run>/ckpt/last.pt [--num_images N]")


def main(argv: list[str] | None = None) -> dict:
    parser = _Parser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="<run>/ckpt/last.pt")
    parser.add_argument("--num_images", type=int, default=None, help="images for FID/KID")
    parser.add_argument("--out_dir", default=None, help="default: <run>/eval")
    parser.add_argument("--keypoint_steps", type=int, default=None,
                        help="training steps of the stand-in keypoint detector (PCK)")
    parser.add_argument("--pose_seq", default=None,
                        help=".npy pose sequence ([F,3] global orientations as the official "
                             "seq_novel_pose.npy, [F,69] body poses or [F,72]) -> novel_pose.png")
    parser.add_argument("--quick", action="store_true",
                        help="fewer views/frames for the figures and speed (smoke runs)")
    args = parser.parse_args(argv)
    if args.num_images is not None and args.num_images < 2:
        raise ConfigError(f"--num_images {args.num_images}: need at least 2 images")
    if args.keypoint_steps is not None and args.keypoint_steps < 0:
        raise ConfigError(f"--keypoint_steps {args.keypoint_steps}: must be >= 0")
    result = evaluate(args.ckpt, args.out_dir, args.num_images, args.keypoint_steps,
                      args.pose_seq, args.quick)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli(main)
