"""Multi-GPU training under torchrun (the official GSM code trains on several GPUs).

The official code is built on the EG3D / StyleGAN2-ADA training loop, and this follows the same
scheme: every rank holds full copies of G, G_ema and D, takes its share of the global batch, and
after each backward the gradients of the module being trained are averaged over the ranks with
one `torch.distributed.all_reduce` of a flattened tensor. PyTorch's DistributedDataParallel
wrapper is not used: its documentation states that it does not work with
`torch.autograd.grad()`, and the R1 penalty needs a double backward through D with it.

Launch: `torchrun --nproc_per_node N train.py --config ...`. Without torchrun (WORLD_SIZE unset or
1) every function here is a no-op apart from the finite-loss check, and training is one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from .runtime import ConfigError, resolve_device


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every rank (identical replicas at start)."""
        if self.active:
            for t in [*module.parameters(), *module.buffers()]:
                torch.distributed.broadcast(t.data, src=0)

    def reduce_grads(self, module: nn.Module, loss: torch.Tensor) -> None:
        """Average `module`'s gradients over ranks; raise FloatingPointError on every rank at
        once when any rank's loss or the averaged gradients are not finite."""
        bad = (~torch.isfinite(loss.detach())).float().reshape(1)
        params = [p for p in module.parameters() if p.grad is not None]
        if self.active:
            flat = torch.cat([bad.to(self.device), *(p.grad.flatten() for p in params)])
            torch.distributed.all_reduce(flat)
            bad = flat[:1].cpu()
            grads = flat[1:] / self.world
            offset = 0
            for p in params:
                p.grad.copy_(grads[offset:offset + p.numel()].view_as(p.grad))
                offset += p.numel()
            bad = bad + (~torch.isfinite(grads).all()).float().cpu()
        if float(bad) > 0:
            raise FloatingPointError(f"non-finite loss or gradient (loss on rank {self.rank}: "
                                     f"{float(loss.detach())})")

    def average_(self, tensors: list[torch.Tensor]) -> None:
        """In-place mean over ranks (running statistics such as the mapping network's w_avg)."""
        if self.active:
            for t in tensors:
                torch.distributed.all_reduce(t.data)
                t.data /= self.world

    def mean_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Scalar metrics averaged over ranks (rank 0 logs them)."""
        if not self.active:
            return metrics
        keys = sorted(metrics)
        vals = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64,
                            device=self.device)
        torch.distributed.all_reduce(vals)
        return {k: float(v) / self.world for k, v in zip(keys, vals.cpu())}

    def share(self, obj):
        """Rank 0's picklable `obj` on every rank (e.g. the run folder name)."""
        if not self.active:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def check_consistent(self, module: nn.Module, name: str) -> None:
        """Raise if the replicas of `module` have drifted apart (a synchronisation bug)."""
        if not self.active:
            return
        flat = torch.cat([p.detach().flatten() for p in module.parameters()])
        ref = flat.clone()
        torch.distributed.broadcast(ref, src=0)
        diff = (flat - ref).abs().max().reshape(1)
        torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
        if float(diff) > 1e-6:
            raise RuntimeError(f"{name} differs across ranks (max |diff| {float(diff):.3g})")

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


BACKENDS = ("nccl", "gloo", "mpi", "ucc")


def dist_backend(use_cuda: bool) -> str:
    """`DIST_BACKEND` from the environment, else nccl on CUDA and gloo on CPU. (NCCL refuses
    two ranks on one GPU: a one-GPU 2-process check runs with DIST_BACKEND=gloo.)"""
    name = os.environ.get("DIST_BACKEND", "").strip().lower()
    if not name:
        return "nccl" if use_cuda else "gloo"
    if name not in BACKENDS:
        raise ConfigError(f"DIST_BACKEND={name!r} is not a torch.distributed backend",
                          f"use one of {', '.join(BACKENDS)}")
    return name


def init_distributed(device_name: str) -> Dist:
    """Join torchrun's process group when WORLD_SIZE > 1 (backend from `dist_backend`; each
    rank on cuda:LOCAL_RANK, modulo the GPU count so that DIST_BACKEND=gloo can run several ranks
    on one GPU); otherwise a single process on `device_name`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, resolve_device(device_name))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    backend = dist_backend(use_cuda)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return Dist(torch.distributed.get_rank(), world, device)
