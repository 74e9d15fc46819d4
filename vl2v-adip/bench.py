"""Throughput, measured side by side in one run (`python bench.py`, CPU unless CUDA is present):

1. inference images/s of the students vs the teacher (the paper's cost motivation):
   tiny synthetic models (32 px) and paper-size models with random weights (224 px):
   ResNet-50 / ViT-S/16 students vs a CLIP ViT-B/16 image tower;
2. training step time per stage (Align, Distill) against a reference step written the way the
   official DFC_STAGE1/2 `update` computes it (per-sample Python gather of the text targets,
   -cos loss). The official class itself cannot run here (OpenAI `clip` package, CUDA-only
   paths, its DomainBed package), see README.

`python bench.py --gpu [--json PATH]`: the GPU figures at the paper's sizes (224 px, ResNet-50
and ViT-S/16 students, CLIP ViT-B/16 tower, 96 images per training step = 3 domains x 32):
inference images/s, Distill step ms (ours vs official-style), peak CUDA memory; JSON to PATH.
Without CUDA it prints `no CUDA: GPU figures skipped` and exits 0.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F


def _rate(fn, batch: int, iters: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return batch * iters / (time.perf_counter() - t0)


@torch.no_grad()
def inference(student, teacher_tower, size: int, batch: int, iters: int) -> tuple[float, float]:
    x = torch.rand(batch, 3, size, size)
    student.eval(), teacher_tower.eval()
    return _rate(lambda: student(x), batch, iters), _rate(lambda: teacher_tower(x), batch, iters)


def official_style_step(model, opt, teacher, class_emb, x, y, lmd):
    """Reference: the official update's computation (gather loop, -cos, separate terms)."""
    img = teacher.image_embeddings(x)
    txt = torch.stack([class_emb[int(y[i])] for i in range(len(y))])
    p = model.proj(model.backbone(x))
    p = p / p.norm(dim=-1, keepdim=True)
    loss = lmd * -torch.mean(F.cosine_similarity(p, img)) + (1 - lmd) * -torch.mean(
        F.cosine_similarity(p, txt))
    opt.zero_grad()
    loss.backward()
    opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clip_tower(device: torch.device, layers: int = 12):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from vl2v_adip.teacher import ImageTower

    vit_b16 = CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=layers,
                               num_attention_heads=12, image_size=224, patch_size=16)
    return ImageTower(CLIPVisionModel(vit_b16), torch.nn.Linear(768, 512, bias=False),
                      224).to(device).eval()


def gpu_figures(device: str = "cuda", per_domain: int = 32, infer_batch: int = 64,
                iters: int = 5, students: tuple[str, ...] = ("resnet50", "vit_small_patch16_224"),
                tower_layers: int = 12) -> dict:
    """Paper-size figures (random weights): images/s and Distill step time (3 x per_domain
    images), on CUDA; the tests call it on the CPU with small batches and models."""
    import numpy as np

    from vl2v_adip.config import parse_config
    from vl2v_adip.engine import make_optimizer, train_step
    from vl2v_adip.model import Student, TimmBackbone
    from vl2v_adip.teacher import BlackBoxTeacher, ClipTeacher, WordTokenizer

    device = torch.device(device)
    torch.manual_seed(0)
    tower = _clip_tower(device, tower_layers)
    teacher = ClipTeacher(tower, torch.nn.Identity(), torch.nn.Linear(4, 512),
                          WordTokenizer([])).to(device).set_input_norm("imagenet")
    oracle = BlackBoxTeacher(teacher)
    class_emb = torch.nn.functional.normalize(torch.randn(7, 512, device=device), dim=-1)
    cuda = device.type == "cuda"
    out: dict = {"device": torch.cuda.get_device_name(device) if cuda else "cpu",
                 "torch": torch.__version__}
    xb = torch.rand(infer_batch, 3, 224, 224, device=device)
    b, n = infer_batch, 3 * per_domain

    def timed(fn, n=iters) -> float:  # seconds per call
        fn()
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        _sync(device)
        return (time.perf_counter() - t0) / n

    with torch.no_grad():
        out[f"teacher_vitb16_img_per_s_b{b}"] = b / timed(lambda: tower(xb))
    cfg = parse_config(["--method", "adip", "--freeze_bn", "true"])
    x, y = torch.rand(n, 3, 224, 224, device=device), torch.arange(n, device=device) % 7
    for name in students:
        student = Student(TimmBackbone(name, 224), "text", 7, class_emb, 100.0).to(device)
        with torch.no_grad():
            student.eval()
            out[f"{name}_img_per_s_b{b}"] = b / timed(lambda s=student: s(xb))
        opt = make_optimizer(cfg, student, "distill")
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        ours = timed(lambda s=student, o=opt: train_step(cfg, s, o, oracle, class_emb, x, y,
                                                         "distill", np.random.default_rng(0)))
        out[f"{name}_distill_step_ms_b{n}"] = 1000 * ours
        if cuda:
            out[f"{name}_distill_cuda_max_mem_mib"] = (torch.cuda.max_memory_allocated(device)
                                                       / 2**20)
        ref = timed(lambda s=student, o=opt: official_style_step(s, o, oracle, class_emb, x, y,
                                                                 0.5))
        out[f"{name}_official_style_step_ms_b{n}"] = 1000 * ref
        out[f"{name}_official_style_over_ours"] = ref / ours
        del student, opt
        if cuda:
            torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--gpu", action="store_true", help="paper-size figures on CUDA")
    ap.add_argument("--json", default="", help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.gpu:
        if not torch.cuda.is_available():
            print("no CUDA: GPU figures skipped")
            return {}
        t0 = time.perf_counter()
        figures = gpu_figures()
        figures["bench_s"] = time.perf_counter() - t0
        for k, v in figures.items():
            print(f"{k:45s} {v:.1f}" if isinstance(v, float) else f"{k:45s} {v}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(figures, f, indent=2)
        return figures
    return cpu_figures()


def cpu_figures() -> dict:
    import numpy as np

    from vl2v_adip.config import parse_config
    from vl2v_adip.data import SYNTH_CLASSES
    from vl2v_adip.engine import make_optimizer, train_step
    from vl2v_adip.model import SmallCNN, Student, TimmBackbone
    from vl2v_adip.teacher import BlackBoxTeacher, build_stand_in

    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    teacher = build_stand_in(list(SYNTH_CLASSES), [], 32, 64).eval()
    s, t = inference(SmallCNN(16), teacher.image_tower, 32, 64, 10)
    rows.append(("tiny: small_cnn(16) vs stand-in teacher(32), 32px, b64", s, t))
    clip_tower = _clip_tower(torch.device("cpu"))
    for name in ("resnet50", "vit_small_patch16_224"):
        s, t = inference(TimmBackbone(name, 224), clip_tower, 224, 4, 2)
        rows.append((f"paper size: {name} vs CLIP ViT-B/16 tower, 224px, b4", s, t))
    print("\n== inference images/s (student vs teacher) ==")
    print(f"{'setting':62s} {'student':>9s} {'teacher':>9s} {'ratio':>7s}")
    for name, s, t in rows:
        print(f"{name:62s} {s:9.1f} {t:9.1f} {s / t:7.2f}x")

    oracle = BlackBoxTeacher(teacher)
    class_emb = oracle.class_embeddings(list(SYNTH_CLASSES))
    x, y = torch.rand(96, 3, 32, 32), torch.arange(96) % 6
    cfg = parse_config(["--method", "adip"])
    steps = []
    for stage in ("align", "distill"):
        model = Student(SmallCNN(16), "text", 6, class_emb, oracle.scale())
        opt = make_optimizer(cfg, model, stage)
        ours = _rate(lambda m=model, o=opt, st=stage: train_step(
            cfg, m, o, oracle, class_emb, x, y, st, np.random.default_rng(0)), 1, 10)
        if stage == "align":
            model.backbone.eval()
        ref = _rate(lambda m=model, o=opt: official_style_step(m, o, oracle, class_emb, x, y, 0.5),
                    1, 10)
        steps.append((stage, 1000 / ours, 1000 / ref))
    print("\n== training step time, small_cnn student, 96 images (3 domains x 32) ==")
    print(f"{'stage':10s} {'ours ms':>9s} {'official-style ms':>18s} {'ratio':>7s}")
    for stage, a, b in steps:
        print(f"{stage:10s} {a:9.1f} {b:18.1f} {b / a:7.2f}x")
    return {"inference": rows, "steps": steps}


if __name__ == "__main__":
    main()
