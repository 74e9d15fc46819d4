"""Multi-GPU training under torchrun with PyTorch DistributedDataParallel.

`torchrun --nproc_per_node N train.py --config ...` starts N processes; each joins the process
group (nccl on CUDA, gloo on CPU, or the backend named by the environment variable
DIST_BACKEND, e.g. DIST_BACKEND=gloo for several ranks on one GPU, which NCCL refuses), trains
on its rows of every global batch (`batch_size` is the global batch: the same indices and
binarisation on every rank) and DDP averages the gradients.
Each rank draws its own latent samples. Without torchrun (WORLD_SIZE unset or 1) training is a
single process and nothing here communicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .runtime import ConfigError, resolve_device

BACKENDS = ("nccl", "gloo")


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def part(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of `batch_size`."""
        if batch_size % self.world:
            raise ConfigError(f"batch_size={batch_size} (the global batch) must be divisible by "
                              f"the number of torchrun processes ({self.world})", "--batch_size")
        per = batch_size // self.world
        return slice(self.rank * per, (self.rank + 1) * per)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Scalars averaged over ranks: the global batch's losses, identical on every rank (so a
        non-finite loss on any rank stops all of them together)."""
        if self.world == 1:
            return values
        keys = sorted(values)
        vec = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(vec)
        return {k: float(v) / self.world for k, v in zip(keys, vec.cpu())}

    def share(self, obj):
        """Rank 0's picklable `obj` on every rank."""
        if self.world == 1:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj) -> list:
        """[obj of rank 0, obj of rank 1, ...] on every rank."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def check_consistent(self, module: torch.nn.Module) -> None:
        """Raise if the replicas' weights have drifted apart (they must not under DDP)."""
        if self.world == 1:
            return
        flat = torch.cat([p.detach().flatten() for p in module.parameters()])
        ref = flat.clone()
        torch.distributed.broadcast(ref, src=0)
        diff = (flat - ref).abs().max().reshape(1)
        torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
        if float(diff) > 1e-6:
            raise RuntimeError(f"model weights differ across ranks (max |diff| {float(diff):.3g})")

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def dist_backend(use_cuda: bool) -> str:
    """DIST_BACKEND from the environment, else nccl on CUDA and gloo on CPU."""
    backend = os.environ.get("DIST_BACKEND", "") or ("nccl" if use_cuda else "gloo")
    if backend not in BACKENDS:
        raise ConfigError(f"DIST_BACKEND={backend!r} is not one of {BACKENDS}",
                          "environment variable DIST_BACKEND")
    return backend


def init_distributed(device_name: str) -> Dist:
    """Join torchrun's process group when WORLD_SIZE > 1 (each rank on cuda:LOCAL_RANK, modulo
    the number of GPUs, or CPU with gloo); otherwise one process on `device_name`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, resolve_device(device_name))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    backend = dist_backend(use_cuda)
    device = torch.device("cpu")
    if use_cuda:  # ranks beyond the GPU count share GPUs (needs DIST_BACKEND=gloo)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend)
    return Dist(torch.distributed.get_rank(), world, device)
