"""Embedding extraction: patches from an image folder, or a WSI bag with FPS + aggregation.

  python extract.py --ckpt runs/demo/ckpt/last.pt --images <folder> --out emb.npz
  python extract.py --official PathDino512.pth --slide x.svs --out wsi.npz
WSI output: FPS coordinates, the bag of patch embeddings [n, D], its mean (one WSI vector) and the
official code's barcodes (sign of consecutive feature differences, "BoB").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from pathdino.data import SourceImages, scan_image_folder
from pathdino.evaluation import embed
from pathdino.fps import fps_select, read_patches
from pathdino.runtime import cli, ensure_writable_dir
from pathdino.slide import open_slide


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ckpt", help="<run>/ckpt/last.pt (teacher backbone)")
    p.add_argument("--official", help="official PathDino512.pth (512 px, patch 16)")
    p.add_argument("--images", help="folder of patch images")
    p.add_argument("--slide", help="pyramidal TIFF / SVS slide")
    p.add_argument("--out", required=True)
    p.add_argument("--num_patches", type=int, default=30)
    p.add_argument("--patch_size", type=int, default=1000, help="patch side at 20x")
    p.add_argument("--backend", default="tifffile", choices=["tifffile", "openslide"])
    a = p.parse_args(argv)
    if bool(a.ckpt) == bool(a.official) or bool(a.images) == bool(a.slide):
        p.error("give one of --ckpt/--official and one of --images/--slide")
    ensure_writable_dir(Path(a.out).resolve().parent, "out")
    if a.ckpt:
        from pathdino.networks import load_models
        from pathdino.runtime import load_checkpoint

        cfg, _, teacher = load_models(load_checkpoint(a.ckpt), a.ckpt)
        backbone, size = teacher.backbone, cfg.model_img_size
    else:
        from pathdino.model import load_official_weights

        backbone, size = load_official_weights(a.official), 512
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backbone = backbone.to(device)
    if a.images:
        scan = scan_image_folder(a.images, labelled=False)
        src = SourceImages(files=scan.files)
        feats = torch.cat([embed(backbone, src[i][None], size, device) for i in range(len(src))])
        result = {"embeddings": feats.numpy(), "files": np.array([str(f) for f in scan.files])}
    else:
        with open_slide(a.slide, a.backend) as slide:
            sel = fps_select(slide, a.num_patches, output_patch_size=a.patch_size)
            tiles = torch.from_numpy(read_patches(slide, sel)).permute(0, 3, 1, 2)
        bag = embed(backbone, tiles, size, device).numpy()
        result = {"coords": np.array(sel.coords), "bag": bag, "wsi_mean": bag.mean(0),
                  "barcodes": (np.diff(bag, axis=1) < 0).astype(np.uint8)}
    np.savez(a.out, **result)
    print({k: v.shape for k, v in result.items()})
    return result


if __name__ == "__main__":
    cli(main)
