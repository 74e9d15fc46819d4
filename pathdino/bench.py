"""`make bench-pathdino`: PathDino (5 blocks) vs ViT-S/16 (12 blocks, DINO default) patch
embeddings/s on the same input, and FPS vs exhaustive tiling on a synthetic pyramidal slide.

`--gpu [--json PATH]`: the same embedding figures on CUDA at the paper's 512 px (fp32 and bf16
autocast, batch 64) and one paper-size DINO training step (2 x 512 + 8 x 224 px crops, K = 65,536,
batch 64): seconds per step, images/s, peak CUDA memory. Without CUDA it says so and exits 0."""

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


def _rate(fn, items: int, repeats: int, device: torch.device) -> float:
    """items/s of fn() (after one warm-up call; CUDA synchronised around the timing)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return repeats * items / (time.perf_counter() - start)


def gpu_figures(json_path: str | None, batch: int = 64, repeats: int = 5,
                device: torch.device | None = None) -> dict:
    """Embeddings/s at 512 px (fp32, bf16) and a paper-size training step on CUDA (another
    `device` runs the same code, for a dry run of this function on the CPU)."""
    from pathdino.config import parse_config
    from pathdino.engine import build_models, build_optimizer, train_step
    from pathdino.losses import DINOLoss

    if device is None and not torch.cuda.is_available():
        print("no CUDA: GPU figures skipped")
        return {}
    device = device or torch.device("cuda")
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 512, 512, device=device)
    out: dict = {"device": torch.cuda.get_device_name(device) if cuda else str(device),
                 "img_size": 512, "batch": batch}
    for name, depth in (("pathdino_5blk", 5), ("vit_s16_12blk", 12)):
        model = PathDinoViT(ViTConfig(512, 16, 384, depth, 6)).to(device).eval()
        with torch.no_grad():
            out[f"{name}_emb_per_s_fp32"] = _rate(lambda m=model: m(x), batch, repeats, device)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                out[f"{name}_emb_per_s_bf16"] = _rate(lambda m=model: m(x), batch, repeats,
                                                      device)
    out["speedup_fp32"] = out["pathdino_5blk_emb_per_s_fp32"] / out["vit_s16_12blk_emb_per_s_fp32"]
    cfg = parse_config(["--config", str(Path(__file__).parent / "configs" / "paper.toml"),
                        "--data_root", "unused", "--batch_size", str(batch)])
    student, teacher = build_models(cfg)
    student, teacher = student.to(device), teacher.to(device)
    loss_fn = DINOLoss(cfg.head_out_dim, 2 + cfg.local_crops_number).to(device)
    optimizer = build_optimizer(student)
    crops = [torch.randn(batch, 3, 512, 512, device=device)] * 2 + [
        torch.randn(batch, 3, 224, 224, device=device)] * cfg.local_crops_number
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    steps = iter(range(10**6))
    rate = _rate(lambda: train_step(student, teacher, loss_fn, crops, optimizer, cfg,
                                    next(steps)), batch, 3 if cuda else 1, device)
    out.update(train_images_per_s=rate, train_s_per_step=batch / rate,
               train_cuda_max_mem_mib=torch.cuda.max_memory_allocated(device) / 2**20
               if cuda else None)
    print(json.dumps(out, indent=1))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(out, indent=1))
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu", action="store_true", help="CUDA figures only (see above)")
    parser.add_argument("--json", default="", help="with --gpu: write the figures here")
    parser.add_argument("--img_size", type=int, default=224, help="paper: 512 (slow on CPU)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slide_size", type=int, default=2048)
    parser.add_argument("--patch_size", type=int, default=128, help="level-0 patch side")
    args = parser.parse_args(argv)
    if args.gpu:
        return gpu_figures(args.json or None)
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
