"""Paper-preset smoke run (issue 24): configs/paper.toml at the paper's sizes, 2 steps, resume
for 1, eval on a small crop, for each family; wall time and peak memory in <out>/smoke.json.

    python smoke.py [--device auto|cpu|cuda] [--batch_size N] [--out runs/smoke]
                    [--families vanilla_nerf,tensorf,dvgo,plenoxels,nerfacto]
"""

from __future__ import annotations

from alpha_invariance.runtime import cli


def main(argv: list[str] | None = None) -> dict:
    from alpha_invariance.config import FAMILIES
    from alpha_invariance.runtime import ArgParser
    from alpha_invariance.smoke import check_families, run_smoke

    parser = ArgParser(description=__doc__)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--batch_size", type=int, default=0,
                        help="rays per step; 0 = the paper preset's batch_rays")
    parser.add_argument("--out", default="runs/smoke")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--crop", type=int, default=32, help="eval: central N x N pixels")
    args = parser.parse_args(argv)
    result = run_smoke(args.out, args.device, args.batch_size or None,
                       check_families(args.families), args.crop)
    print(f"smoke alpha-invariance: {'ok' if result['ok'] else 'FAILED'} device={args.device} "
          f"wall {result['wall_s']} s (train {result['train_s']}, resume {result['resume_s']}, "
          f"eval {result['eval_s']}), peak RSS {result['peak_rss_mib']} MiB, cuda "
          f"{result['cuda_max_mem_mib']} MiB, batch {result['batch_size']}/"
          f"{result['paper_batch_size']}")
    if not result["ok"]:
        raise SystemExit(1)
    return result


if __name__ == "__main__":
    cli(main)
