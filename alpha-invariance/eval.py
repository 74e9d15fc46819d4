"""Evaluate a run: PSNR / SSIM / LPIPS on held-out views, init transmittance, figures.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--num_views 4] [--crop 64] [--device cpu]
Writes <run>/eval/test.json and <run>/eval/renders.png. A user error prints one line
`error: ...` and exits with status 2; add --debug for the traceback.
"""

from __future__ import annotations

from alpha_invariance.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    import json

    from alpha_invariance.engine import evaluate
    from alpha_invariance.runtime import ArgParser

    parser = ArgParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--num_views", type=int, default=None, help="0 = all held-out views")
    parser.add_argument("--crop", type=int, default=None,
                        help="evaluate the central N x N pixels of each view (0 = whole image)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda (default: the run's)")
    args = parser.parse_args(argv)
    report = evaluate(args.ckpt, {"eval_num_views": args.num_views, "eval_crop": args.crop,
                                  "device": args.device})
    print(json.dumps({k: v for k, v in report.items() if k != "per_view"}, indent=2))
    return report


if __name__ == "__main__":
    cli(main)
