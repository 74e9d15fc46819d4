"""The scene-scale sweep behind reproduce.py (Sec. 6): test PSNR of each family trained at scene
scale k with its published density heuristic (baseline) and with the paper's recipe, over seeds;
nerfstudio's own NerfactoModel (stock vs the plugin's recipe) on the same data.

Writes <out>/table.md, table.json, psnr_vs_k.png, renders_by_k.png.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from .config import parse_config
from .engine import fit, load_data, load_model, render_view
from .figures import save_psnr_vs_k, save_renders_by_k
from .runtime import load_checkpoint

CLAIM = Path(__file__).resolve().parents[2] / "configs" / "claim.toml"
NS_ROW = "nerfstudio_nerfacto"


def _our_cell(family: str, recipe: bool, k: float, seed: int, steps: int, run: Path,
              extra: list[str]) -> dict:
    argv = ["--config", str(CLAIM), "--model_family", family, "--recipe", str(recipe).lower(),
            "--data_scene_scale", str(k), "--steps", str(steps), "--seed", str(seed),
            "--out_dir", str(run), *extra]
    cfg = parse_config(argv)
    res = fit(cfg)
    init = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    model = load_model(load_checkpoint(run / "ckpt" / "last.pt"))
    render = render_view(model, load_data(cfg).test_views[0], cfg.eval_chunk)["rgb"]
    return {"psnr": res["psnr"], "ssim": res["ssim"], "init_T_mean": init.get("init_T_mean"),
            "render": render}


def _ns_cell(recipe: bool, k: float, seed: int, steps: int, extra: list[str]) -> dict:
    from .ns_claim import run_nerfstudio_nerfacto, small_nerfacto_args

    cfg = parse_config(["--config", str(CLAIM), "--model_family", "nerfacto",
                        "--data_scene_scale", str(k), "--seed", str(seed), "--steps", str(steps),
                        *extra])
    data = load_data(cfg)
    return run_nerfstudio_nerfacto(data, recipe, steps, cfg.batch_rays, seed,
                                   num_views=cfg.eval_num_views,
                                   num_train=cfg.data_num_train_views, lr=cfg.lr,
                                   target_transmittance=cfg.recipe_target_transmittance,
                                   model_args=small_nerfacto_args(
                                       cfg.model_hash_levels, cfg.model_hash_log2_size,
                                       cfg.model_hash_max_res, cfg.model_width,
                                       cfg.model_num_samples))


def run_claim_check(families: list[str], scales: list[float], steps: int, out_dir: str,
                    extra: list[str] | None = None, seeds: tuple[int, ...] = (0,),
                    ns_scales: tuple[float, ...] = (), sweep_scales: tuple[float, ...] = (),
                    ns_seeds: tuple[int, ...] | None = None) -> dict:
    """Train every (family, variant, k, seed); write and return the PSNR table and figures.

    `scales` run with every seed; `sweep_scales` (the ends of the paper's k sweep) with the first
    seed only; nerfstudio's Nerfacto at `ns_scales` with `ns_seeds` (default: `seeds`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = list(extra or [])
    rows, renders, t_start = [], {}, time.time()
    all_scales = sorted(set(scales) | set(sweep_scales))
    cells = [(f, v, k, seeds if k in scales else seeds[:1])
             for f in families for v in ("baseline", "recipe") for k in all_scales]
    cells += [(NS_ROW, v, k, seeds if ns_seeds is None else ns_seeds)
              for v in ("baseline", "recipe") for k in ns_scales]
    for family, variant, k, cell_seeds in cells:
        for seed in cell_seeds:
            t0 = time.time()
            if family == NS_ROW:
                res = _ns_cell(variant == "recipe", k, seed, steps, extra)
            else:
                run = out / f"{family}_{variant}_k{k:g}_s{seed}"
                res = _our_cell(family, variant == "recipe", k, seed, steps, run, extra)
            renders.setdefault((family, variant), {}).setdefault(k, res.pop("render"))
            rows.append({"family": family, "variant": variant, "k": k, "seed": seed,
                         **{m: None if v is None else round(float(v), 4) for m, v in res.items()
                            if m != "seconds"},
                         "seconds": round(time.time() - t0, 1)})
            print(json.dumps(rows[-1]), flush=True)
    table = summarise(rows)
    text = table_markdown(table, all_scales)
    (out / "table.md").write_text(text + "\n")
    total = round(time.time() - t_start)
    (out / "table.json").write_text(json.dumps({"rows": rows, "steps": steps, "seeds": seeds,
                                                "sweep_scales": list(sweep_scales),
                                                "extra": extra, "total_seconds": total,
                                                "table": _jsonable(table)}, indent=2))
    save_psnr_vs_k(out / "psnr_vs_k.png", table)
    all_k = sorted({k for f in renders.values() for k in f})
    save_renders_by_k(out / "renders_by_k.png",
                      [(f"{f}\n{v}", [r.get(k) for k in all_k]) for (f, v), r in renders.items()],
                      all_k)
    print(text)
    print(f"total {total}s; figures in {out}")
    return {"table": _jsonable(table), "rows": rows, "total_seconds": total}


def summarise(rows: list[dict]) -> dict[str, dict[str, dict[float, tuple[float, float, int]]]]:
    """table[family][variant][k] = (mean PSNR, std over seeds (0 for one seed), seeds)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(r["family"], {}).setdefault(r["variant"], {}).setdefault(
            r["k"], []).append(r["psnr"])
    return {f: {v: {k: (statistics.fmean(p), statistics.stdev(p) if len(p) > 1 else 0.0, len(p))
                    for k, p in sorted(ks.items())} for v, ks in vs.items()}
            for f, vs in groups.items()}


def table_markdown(table: dict, scales: list[float]) -> str:
    """One row per family x variant: PSNR mean +/- std per k, and the spread across k."""
    all_k = sorted({k for vs in table.values() for ks in vs.values() for k in ks} | set(scales))
    lines = ["| family | variant | " + " | ".join(f"k={k:g}" for k in all_k) + " | spread |",
             "|---" * (len(all_k) + 3) + "|"]
    for family, variants in table.items():
        for variant, ks in variants.items():
            cells = [(f"{ks[k][0]:.2f} ± {ks[k][1]:.2f}" if ks[k][2] > 1 else f"{ks[k][0]:.2f}")
                     if k in ks else "-" for k in all_k]
            means = [m for m, _, _ in ks.values()]
            lines.append(f"| {family} | {variant} | " + " | ".join(cells)
                         + f" | {max(means) - min(means):.2f} |")
    return "\n".join(lines)


def _jsonable(table: dict) -> dict:
    return {f: {v: {f"{k:g}": {"mean": m, "std": s, "seeds": n} for k, (m, s, n) in ks.items()}
                for v, ks in vs.items()} for f, vs in table.items()}
