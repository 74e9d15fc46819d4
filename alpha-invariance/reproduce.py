"""Claim check (Sec. 6, scene-scale sweep), small and on CPU: test PSNR of each family trained at
scene scales k with its published density heuristic (baseline) and with the paper's recipe, and
nerfstudio's own NerfactoModel (stock vs the plugin's recipe) on the same data.
Writes <out_dir>/{table.md,table.json,psnr_vs_k.png,renders_by_k.png}.

    python reproduce.py                 # the claim check (<= 15 min on 2 CPU cores)
    python reproduce.py --sweep         # k in {0.01, 0.1, 1, 10, 100}, runs/sweep (longer)
"""

from __future__ import annotations

from alpha_invariance.runtime import cli

FAMILIES = "vanilla_nerf,dvgo,plenoxels,tensorf,nerfacto"


def main(argv: list[str] | None = None) -> dict:
    from alpha_invariance.claim import run_claim_check
    from alpha_invariance.runtime import ArgParser, ConfigError
    from alpha_invariance.smoke import check_families

    parser = ArgParser(description=__doc__)
    parser.add_argument("--families", default=FAMILIES)
    parser.add_argument("--scales", default="0.1,1,10")
    parser.add_argument("--nerfstudio_scales", default="1,10",
                        help="k for nerfstudio's NerfactoModel rows ('' = none)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--out_dir", default="")
    parser.add_argument("--sweep", action="store_true",
                        help="k in {0.01, 0.1, 1, 10, 100} for every family, one seed")
    parser.add_argument("--extra", default="", help="extra '--field value' overrides, spaced")
    args = parser.parse_args(argv)
    if args.sweep:
        args.scales, args.seeds = "0.01,0.1,1,10,100", "0"
        args.nerfstudio_scales = "0.01,1,100" if args.nerfstudio_scales == "1,10" else \
            args.nerfstudio_scales
    try:
        scales = [float(k) for k in args.scales.split(",") if k]
        ns_scales = tuple(float(k) for k in args.nerfstudio_scales.split(",") if k)
        seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    except ValueError as err:
        raise ConfigError(f"reproduce.py: {err}", "comma-separated numbers") from None
    if not seeds or min(scales + list(ns_scales) + [1.0]) <= 0:
        raise ConfigError("need at least one seed and scales k > 0", "reproduce.py --help")
    return run_claim_check(check_families(args.families), scales, args.steps,
                           args.out_dir or ("runs/sweep" if args.sweep else "runs/reproduce"),
                           args.extra.split(), seeds=seeds, ns_scales=ns_scales)


if __name__ == "__main__":
    cli(main)
