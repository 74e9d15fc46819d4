"""`make bench-pathdino`: PathDino (5 blocks) vs ViT-S/16 (12 blocks, DINO default) patch
embeddings/s on the same input, and FPS vs exhaustive tiling on a synthetic pyramidal slide."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pathdino.fps import exhaustive_tiles, fps_select, read_patches
from pathdino.model import PathDinoViT, ViTConfig, count_parameters
from pathdino.slide import TiffSlide, write_pyramidal_tiff
from pathdino.synthetic import synthetic_slide_image


def embeddings_per_second(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return repeats * len(x) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--img_size", type=int, default=224, help="paper: 512 (slow on CPU)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slide_size", type=int, default=2048)
    parser.add_argument("--patch_size", type=int, default=128, help="level-0 patch side")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x = torch.randn(args.batch, 3, args.img_size, args.img_size, device=device)
    models = {"pathdino_5blk": ViTConfig(args.img_size, 16, 384, 5, 6),
              "vit_s16_12blk": ViTConfig(args.img_size, 16, 384, 12, 6)}
    out: dict = {"device": str(device), "img_size": args.img_size}
    for name, vcfg in models.items():
        model = PathDinoViT(vcfg).to(device).eval()
        out[name] = {"params_M": count_parameters(model) / 1e6,
                     "emb_per_s": embeddings_per_second(model, x, args.repeats)}
    out["speedup"] = out["pathdino_5blk"]["emb_per_s"] / out["vit_s16_12blk"]["emb_per_s"]

    rng = np.random.default_rng(0)
    image, _ = synthetic_slide_image([0, 1, 2, 3, 0, 1, 2, 3, 0], args.slide_size, 4, 20.0, rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.tif"
        write_pyramidal_tiff(path, image, levels=4, tile=256)
        with TiffSlide(path) as slide:
            kw = {"tissue_threshold": 0.9, "output_patch_size": args.patch_size,
                      "thumbnail_size": 1024}
            for name, select in (("fps", lambda: fps_select(slide, 30, **kw)),
                                 ("exhaustive", lambda: exhaustive_tiles(slide, **kw))):
                start = time.perf_counter()
                sel = select()
                patches = read_patches(slide, sel)
                out[name] = {"patches": len(sel.coords), "select_s": sel.seconds,
                             "select_and_read_s": time.perf_counter() - start,
                             "patches_read": int(patches.shape[0])}
    out["fps_patch_ratio"] = out["exhaustive"]["patches"] / out["fps"]["patches"]
    out["fps_time_ratio"] = out["exhaustive"]["select_and_read_s"] / out["fps"][
        "select_and_read_s"]
    p, v = out["pathdino_5blk"], out["vit_s16_12blk"]
    print(f"device {device}, input {args.img_size}px, batch {args.batch}")
    print(f"{'model':<16}{'params (M)':>12}{'emb/s':>10}")
    print(f"{'PathDino 5 blk':<16}{p['params_M']:>12.2f}{p['emb_per_s']:>10.1f}")
    print(f"{'ViT-S/16 12 blk':<16}{v['params_M']:>12.2f}{v['emb_per_s']:>10.1f}")
    print(f"PathDino / ViT-S throughput ratio: {out['speedup']:.2f}x "
          f"(paper: ~9 M vs 21.7 M parameters)")
    f, e = out["fps"], out["exhaustive"]
    print(f"{'slide patches':<16}{'count':>8}{'select s':>10}{'select+read s':>15}")
    print(f"{'FPS':<16}{f['patches']:>8}{f['select_s']:>10.3f}{f['select_and_read_s']:>15.3f}")
    print(f"{'exhaustive':<16}{e['patches']:>8}{e['select_s']:>10.3f}"
          f"{e['select_and_read_s']:>15.3f}")
    print(f"exhaustive / FPS: {out['fps_patch_ratio']:.1f}x patches, "
          f"{out['fps_time_ratio']:.1f}x time (embedding cost scales with the patch count)")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
