"""The scene-scale sweep behind reproduce.py: baseline vs recipe per family and scale k."""

from __future__ import annotations

import json
import time
from pathlib import Path

from .config import parse_config
from .engine import fit, load_data, load_model, render_view
from .figures import save_psnr_vs_k, save_renders_by_k
from .runtime import load_checkpoint

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.toml"


def run_claim_check(families: list[str], scales: list[float], steps: int, out_dir: str,
                    extra: list[str] | None = None) -> dict:
    """Train every (family, variant, k); return and write the PSNR table and figures."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict[str, dict[float, float]]] = {}
    rows, t_start = [], time.time()
    for family in families:
        table[family] = {"baseline": {}, "recipe": {}}
        for variant in ("baseline", "recipe"):
            images = []
            for k in scales:
                run = out / f"{family}_{variant}_k{k:g}"
                argv = ["--config", str(TINY), "--model_family", family,
                        "--recipe", str(variant == "recipe").lower(), "--data_scene_scale",
                        str(k), "--steps", str(steps), "--out_dir", str(run),
                        "--eval_num_views", "2", *(extra or [])]
                cfg = parse_config(argv)
                t0 = time.time()
                res = fit(cfg)
                table[family][variant][k] = res["psnr"]
                init = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
                rows.append({"family": family, "variant": variant, "k": k,
                             "psnr": round(res["psnr"], 2), "ssim": round(res["ssim"], 3),
                             "init_T_mean": round(init.get("init_T_mean", float("nan")), 4),
                             "seconds": round(time.time() - t0, 1)})
                model = load_model(load_checkpoint(run / "ckpt" / "last.pt"))
                images.append(render_view(model, load_data(cfg).test_views[0], 4096)["rgb"])
            table[family][f"{variant}_images"] = images
    renders = [(f"{f}\n{v}", table[f].pop(f"{v}_images")) for f in families
               for v in ("baseline", "recipe")]
    save_renders_by_k(out / "renders_by_k.png", renders, scales)
    save_psnr_vs_k(out / "psnr_vs_k.png", table)
    md = ["| family | variant | " + " | ".join(f"k={k:g}" for k in scales) + " | spread |",
          "|---" * (len(scales) + 3) + "|"]
    for f in families:
        for v in ("baseline", "recipe"):
            vals = [table[f][v][k] for k in scales]
            md.append(f"| {f} | {v} | " + " | ".join(f"{x:.2f}" for x in vals)
                      + f" | {max(vals) - min(vals):.2f} |")
    text = "\n".join(md)
    (out / "table.md").write_text(text + "\n")
    (out / "table.json").write_text(json.dumps({"rows": rows, "steps": steps,
                                                "total_seconds": round(time.time() - t_start)},
                                               indent=2))
    print(text)
    print(f"total {time.time() - t_start:.0f}s; figures in {out}")
    return {"table": {f: {v: {str(k): p for k, p in s.items()} for v, s in d.items()}
                      for f, d in table.items()}, "rows": rows}
