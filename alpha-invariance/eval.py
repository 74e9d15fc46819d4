"""Evaluate a run: PSNR / SSIM / LPIPS on held-out views, init transmittance, figures.

    python eval.py --ckpt runs/demo/ckpt/last.pt [--num_views 4]
Writes <run>/eval/test.json and <run>/eval/renders.png.
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    import argparse
    import json

    from alpha_invariance.engine import evaluate

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="path to <run>/ckpt/last.pt")
    parser.add_argument("--num_views", type=int, default=0, help="0 = all held-out views")
    args = parser.parse_args(argv)
    report = evaluate(args.ckpt, num_views=args.num_views)
    print(json.dumps({k: v for k, v in report.items() if k != "per_view"}, indent=2))
    return report


if __name__ == "__main__":
    main()
