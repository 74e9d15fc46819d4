"""Multi-GPU training under torchrun with PyTorch DistributedDataParallel.

`torchrun --nproc_per_node N train.py --config ...` starts N processes; each joins the process
group (nccl on CUDA, gloo on CPU), trains on its slice of every global batch (`batch_size` is
the global batch) and DDP averages the gradients. Without torchrun (WORLD_SIZE unset or 1)
training is a single process and nothing here communicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .runtime import ConfigError, resolve_device


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
                              f"the number of torchrun processes ({self.world})")
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

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device_name: str) -> Dist:
    """Join torchrun's process group when WORLD_SIZE > 1 (each rank on cuda:LOCAL_RANK, or CPU
    with gloo); otherwise one process on `device_name`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(0, 1, resolve_device(device_name))
    use_cuda = torch.cuda.is_available() and device_name != "cpu"
    if not torch.distributed.is_initialized():
        # DIST_BACKEND overrides the choice: NCCL refuses two ranks on one GPU, so a one-GPU
        # check of the torchrun path runs gloo with CUDA tensors.
        backend = os.environ.get("DIST_BACKEND") or ("nccl" if use_cuda else "gloo")
        torch.distributed.init_process_group(backend)
    device = torch.device("cpu")
    if use_cuda:
        # ranks share the GPUs round-robin (a one-GPU check runs two ranks on cuda:0)
        local = int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count()
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return Dist(torch.distributed.get_rank(), world, device)
