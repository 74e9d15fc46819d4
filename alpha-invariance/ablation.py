"""Issue 22.1: why did vanilla NeRF lose quality with the recipe? Controlled runs at k = 1.

Each variant changes one thing against the recipe as first shipped (T0 = 0.99, density head
scaled by 0.01 at init, the network learning rate for the density head, 300 steps):

  baseline          the family's own ReLU density (no recipe)
  recipe_T0.99      the recipe as first shipped
  T0.99_head_default  ... with the density head's default (PyTorch) init instead of x 0.01
  T0.99_head_lr_x10   ... with 10x the learning rate on the density head (weights + bias)
  recipe_T0.9 / recipe_T0.5   only the init transmittance changed
  with --long N: baseline, recipe_T0.99 and recipe_T0.5 again at N steps

The sample spacing needs no run: at k = 1 both variants multiply the same world-unit interval d,
and under the recipe log d only shifts x by a constant that x0 absorbs (tests/test_render.py).

    python ablation.py [--steps 300] [--long 1200] [--seeds 0,1,2] [--long_seeds 0]
                       [--out_dir runs/ablation]
Writes <out_dir>/ablation.{md,json}.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
from pathlib import Path

from alpha_invariance.runtime import cli


@contextlib.contextmanager
def _patched(head: str, head_lr: float):
    """Swap the vanilla-NeRF density head init / learning rate for one run (restored after)."""
    from alpha_invariance import model as model_mod

    build, groups = model_mod.build_field, model_mod.RadianceFieldModel.param_groups

    def build_field(spec):
        field = build(spec)
        if head == "default" and spec.family == "vanilla_nerf":
            field.density.reset_parameters()
        return field

    def param_groups(self, lr, lr_grid):
        out = groups(self, lr, lr_grid)
        if head_lr == 1.0:
            return out
        head_ids = {id(p) for p in self.field.density.parameters()}
        out[0]["params"] = [p for p in out[0]["params"] if id(p) not in head_ids]
        hl = lr * head_lr
        return out + [{"params": list(self.field.density.parameters()), "lr": hl, "base_lr": hl}]

    model_mod.build_field, model_mod.RadianceFieldModel.param_groups = build_field, param_groups
    try:
        yield
    finally:
        model_mod.build_field, model_mod.RadianceFieldModel.param_groups = build, groups


# name -> (recipe, T0, density-head init, density-head lr factor)
VARIANTS = {
    "baseline": (False, 0.99, "small", 1.0),
    "recipe_T0.99": (True, 0.99, "small", 1.0),
    "T0.99_head_default": (True, 0.99, "default", 1.0),
    "T0.99_head_lr_x10": (True, 0.99, "small", 10.0),
    "recipe_T0.9": (True, 0.9, "small", 1.0),
    "recipe_T0.5": (True, 0.5, "small", 1.0),
}
LONG = ("baseline", "recipe_T0.99", "recipe_T0.5")


def main(argv: list[str] | None = None) -> dict:
    from alpha_invariance.claim import CLAIM
    from alpha_invariance.config import parse_config
    from alpha_invariance.engine import fit
    from alpha_invariance.runtime import ArgParser

    parser = ArgParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--long", type=int, default=0, help="also run LONG variants this long")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--long_seeds", default="0")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out_dir", default="runs/ablation")
    parser.add_argument("--extra", default="", help="extra '--field value' overrides, spaced")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    long_seeds = [int(s) for s in args.long_seeds.split(",") if s]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = [(n, args.steps, seeds) for n in VARIANTS]
    plan += [(n, args.long, long_seeds) for n in LONG] if args.long else []
    rows = []
    for name, steps, run_seeds in plan:
        recipe, t0, head, head_lr = VARIANTS[name]
        for seed in run_seeds:
            run = out / f"{name}_{steps}_s{seed}"
            argv_run = ["--config", str(CLAIM), "--model_family", "vanilla_nerf",
                        "--recipe", str(recipe).lower(), "--recipe_target_transmittance", str(t0),
                        "--data_scene_scale", str(args.scale), "--steps", str(steps),
                        "--seed", str(seed), "--out_dir", str(run), *args.extra.split()]
            t_start = time.time()
            with _patched(head, head_lr):
                res = fit(parse_config(argv_run))
            init = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
            rows.append({"variant": name, "steps": steps, "seed": seed,
                         "psnr": round(res["psnr"], 3), "init_T_mean": init["init_T_mean"],
                         "seconds": round(time.time() - t_start, 1)})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| variant | steps | init T (mean) | test PSNR dB (mean ± std) | seeds |",
             "|---|---|---|---|---|"]
    for name, steps, _ in plan:
        sel = [r for r in rows if r["variant"] == name and r["steps"] == steps]
        p = [r["psnr"] for r in sel]
        std = statistics.stdev(p) if len(p) > 1 else 0.0
        lines.append(f"| {name} | {steps} | {statistics.fmean(r['init_T_mean'] for r in sel):.3f}"
                     f" | {statistics.fmean(p):.2f} ± {std:.2f} | {len(p)} |")
    text = "\n".join(lines)
    (out / "ablation.md").write_text(text + "\n")
    (out / "ablation.json").write_text(json.dumps({"rows": rows, "scale": args.scale}, indent=2))
    print(text)
    return {"rows": rows, "table": text}


if __name__ == "__main__":
    cli(main)
