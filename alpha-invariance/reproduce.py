"""Claim check (Sec. 6, scene-scale sweep), small and on CPU: test PSNR of each family trained at
scene scales k with its published density heuristic (baseline) and with the paper's recipe, and
nerfstudio's own NerfactoModel (stock vs the plugin's recipe) on the same data.
Writes <out_dir>/{table.md,table.json,psnr_vs_k.png,renders_by_k.png}.

    python reproduce.py          # the claim check (one CPU thread; README has its wall time):
                                 # k in {0.1, 1, 10} x 3 seeds, k in {0.01, 100} x seed 0,
                                 # nerfstudio's Nerfacto at k in {1, 10} x seed 0
    python reproduce.py --sweep  # every k in {0.01, 0.1, 1, 10, 100} with every seed (longer)
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
    parser.add_argument("--sweep_scales", default="0.01,100",
                        help="further k, run with the first seed only ('' = none)")
    parser.add_argument("--nerfstudio_scales", default="1,10",
                        help="k for nerfstudio's NerfactoModel rows ('' = none)")
    parser.add_argument("--nerfstudio_seeds", default="0")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=150, help="per cell (claim.toml: 150)")
    parser.add_argument("--out_dir", default="")
    parser.add_argument("--sweep", action="store_true",
                        help="k in {0.01, 0.1, 1, 10, 100} for every family, every seed")
    parser.add_argument("--extra", default="", help="extra '--field value' overrides, spaced")
    args = parser.parse_args(argv)
    if args.sweep:
        args.scales, args.sweep_scales = "0.01,0.1,1,10,100", ""
    try:
        scales = [float(k) for k in args.scales.split(",") if k]
        sweep = tuple(float(k) for k in args.sweep_scales.split(",") if k)
        ns_scales = tuple(float(k) for k in args.nerfstudio_scales.split(",") if k)
        seeds = tuple(int(s) for s in args.seeds.split(",") if s)
        ns_seeds = tuple(int(s) for s in args.nerfstudio_seeds.split(",") if s)
    except ValueError as err:
        raise ConfigError(f"reproduce.py: {err}", "comma-separated numbers") from None
    if not seeds or (ns_scales and not ns_seeds) or min(scales + [*sweep, *ns_scales, 1.0]) <= 0:
        raise ConfigError("need at least one seed and scales k > 0", "reproduce.py --help")
    return run_claim_check(check_families(args.families), scales, args.steps,
                           args.out_dir or ("runs/sweep" if args.sweep else "runs/reproduce"),
                           args.extra.split(), seeds=seeds, ns_scales=ns_scales,
                           sweep_scales=sweep, ns_seeds=ns_seeds)


if __name__ == "__main__":
    cli(main)
