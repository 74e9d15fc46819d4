"""Claim check (Sec. 6, scene-scale sweep), small and on CPU: PSNR of each family trained at
scene scales k in {0.1, 1, 10}, with its published density heuristic (baseline) and with the
paper's recipe. Writes runs/reproduce/{table.md,table.json,psnr_vs_k.png,renders_by_k.png}.

    python reproduce.py [--families vanilla_nerf,dvgo,plenoxels,tensorf] [--steps 300]
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> dict:
    import argparse

    from alpha_invariance.claim import run_claim_check

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", default="vanilla_nerf,dvgo,plenoxels,tensorf")
    parser.add_argument("--scales", default="0.1,1,10")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out_dir", default="runs/reproduce")
    parser.add_argument("--extra", default="", help="extra '--field value' overrides, spaced")
    args = parser.parse_args(argv)
    return run_claim_check(args.families.split(","), [float(k) for k in args.scales.split(",")],
                           args.steps, args.out_dir, args.extra.split())


if __name__ == "__main__":
    main()
