"""SWAD: dense weight averaging over the validation-loss valley (Cha et al., NeurIPS 2021).

The official VL2V-ADiP runs train with `--swad True` (DomainBed + SWAD code base): every step's
weights are averaged, and the "LossValley" rule picks which steps count. Its defaults (official
config.yaml): n_converge 3, n_tolerance 6, tolerance_ratio 0.3. The rule, as implemented here:

- Training is cut into segments by the validation evaluations; a segment holds the sum of the
  per-step weights since the previous evaluation and is tagged with the validation loss measured
  at its end (training-domain held-out parts, cross-entropy of the online model).
- Start (convergence): the first time the oldest of the last `n_converge` segments has the
  lowest loss of them. That segment opens the average; threshold = (1 + tolerance_ratio) x the
  mean loss of those `n_converge` segments. Earlier, still pending segments directly before it
  whose loss is under the threshold are averaged too (the official code looks back the same way).
- End (dead valley): a pending segment is added once the next `n_tolerance` segments are known
  and their minimum loss is under the threshold; when that minimum exceeds the threshold the
  valley is over, no later segment counts and training may stop early.
- At the end of training the still pending segments are added while the minimum of the
  remaining losses stays under the threshold. Without convergence the last segment is used.

The result is the dense average of the selected steps' parameters; BatchNorm statistics are then
recomputed on training batches (official `swa_utils.update_bn`, 500 batches).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Segment:
    start: int  # first step in the segment (inclusive)
    end: int  # last step (inclusive)
    loss: float  # validation loss of the online model at the segment's end
    total: dict[str, torch.Tensor] = field(repr=False)  # sum of per-step parameters
    steps: int = 0


class LossValley:
    """Online SWAD LossValley selector; `accumulate` every step, `close_segment` every eval."""

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3):
        if n_converge < 1 or n_tolerance < 1:
            raise ValueError(f"n_converge={n_converge}, n_tolerance={n_tolerance} must be >= 1")
        self.n_converge, self.n_tolerance = n_converge, n_tolerance
        self.tolerance_ratio = tolerance_ratio
        self.pending: deque[Segment] = deque()  # closed segments not yet decided
        self.current: Segment | None = None  # open segment
        self.avg_total: dict[str, torch.Tensor] | None = None  # sum over selected steps
        self.avg_steps, self.avg_start, self.avg_end = 0, -1, -1
        self.threshold: float | None = None
        self.dead = False

    @property
    def converged(self) -> bool:
        return self.threshold is not None

    @torch.no_grad()
    def accumulate(self, model: nn.Module, step: int) -> None:
        """Add the weights after training step `step` to the open segment."""
        if self.dead:
            return
        params = {k: p.detach().float() for k, p in model.named_parameters()}  # on its device
        if self.current is None:
            self.current = Segment(step, step, float("nan"), {k: torch.zeros_like(v)
                                                              for k, v in params.items()})
        for k, v in params.items():
            self.current.total[k] += v.to(self.current.total[k].device)
        self.current.end, self.current.steps = step, self.current.steps + 1

    def close_segment(self, val_loss: float) -> None:
        """End the open segment with the validation loss just measured, then apply the rule."""
        if self.dead or self.current is None:
            return
        self.current.loss = float(val_loss)
        self.pending.append(self.current)
        self.current = None
        if not self.converged:
            self._try_converge()
        else:
            self._decide_oldest()

    def _try_converge(self) -> None:
        window = list(self.pending)[-self.n_converge:]
        if len(window) < self.n_converge or min(s.loss for s in window) < window[0].loss:
            self.pending = deque(list(self.pending)[-max(self.n_converge, self.n_tolerance):])
            return
        self.threshold = (1 + self.tolerance_ratio) * sum(s.loss for s in window) / len(window)
        before = list(self.pending)[:-self.n_converge]
        lead = []
        for seg in reversed(before):  # contiguous run under the threshold ending at the start
            if seg.loss > self.threshold:
                break
            lead.insert(0, seg)
        for seg in [*lead, window[0]]:
            self._add(seg)
        self.pending = deque(window[1:])

    def _decide_oldest(self) -> None:
        if len(self.pending) < self.n_tolerance:
            return
        if min(s.loss for s in self.pending) > self.threshold:
            self.dead = True
            self.pending.clear()
            return
        self._add(self.pending.popleft())

    def _add(self, seg: Segment) -> None:
        if self.avg_total is None:
            self.avg_total = {k: v.clone() for k, v in seg.total.items()}
            self.avg_start = seg.start
        else:
            for k, v in seg.total.items():
                self.avg_total[k] += v.to(self.avg_total[k].device)
        self.avg_steps += seg.steps
        self.avg_end = seg.end

    def finalize(self) -> None:
        """End of training: add the pending segments that are still inside the valley."""
        if not self.converged:
            last = self.pending[-1] if self.pending else self.current
            if last is not None and self.avg_total is None:
                self._add(last)
            return
        while self.pending and not self.dead:
            if min(s.loss for s in self.pending) > self.threshold:
                break
            self._add(self.pending.popleft())

    def averaged_parameters(self) -> dict[str, torch.Tensor] | None:
        """Mean parameters over the selected steps (float32), or None if nothing selected."""
        if self.avg_total is None:
            return None
        return {k: v / self.avg_steps for k, v in self.avg_total.items()}

    def summary(self) -> dict[str, float]:
        return {"swad_start": float(self.avg_start), "swad_end": float(self.avg_end),
                "swad_steps": float(self.avg_steps), "swad_converged": float(self.converged),
                "swad_dead_valley": float(self.dead)}

    def state_dict(self) -> dict:
        """Plain types and CPU tensors (for the checkpoint; resume continues exactly)."""

        def cpu(total):
            return None if total is None else {k: v.cpu() for k, v in total.items()}

        def seg(s: Segment | None):
            return None if s is None else {"start": s.start, "end": s.end, "loss": s.loss,
                                           "total": cpu(s.total), "steps": s.steps}

        return {"pending": [seg(s) for s in self.pending], "current": seg(self.current),
                "avg_total": cpu(self.avg_total), "avg_steps": self.avg_steps,
                "avg_start": self.avg_start, "avg_end": self.avg_end,
                "threshold": self.threshold, "dead": self.dead}

    def load_state_dict(self, state: dict) -> None:
        self.pending = deque(Segment(**s) for s in state["pending"])
        self.current = Segment(**state["current"]) if state["current"] else None
        self.avg_total, self.avg_steps = state["avg_total"], state["avg_steps"]
        self.avg_start, self.avg_end = state["avg_start"], state["avg_end"]
        self.threshold, self.dead = state["threshold"], state["dead"]


@torch.no_grad()
def swad_model(model: nn.Module, params: dict[str, torch.Tensor], batches) -> nn.Module:
    """`model` with the averaged parameters loaded and BatchNorm statistics recomputed on
    `batches` (an iterable of image tensors) when it has BatchNorm layers."""
    for name, p in model.named_parameters():
        p.copy_(params[name].to(p.dtype))
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        device = next(model.parameters()).device
        torch.optim.swa_utils.update_bn((x.to(device) for x in batches), model)
    return model.eval()
