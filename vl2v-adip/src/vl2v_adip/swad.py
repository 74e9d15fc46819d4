"""SWAD: dense weight averaging over the validation-loss valley (Cha et al., NeurIPS 2021), as
the official VL2V-ADiP runs use it (DomainBed + SWAD code base, `--swad True`).

Two parts, as in the official trainer:

1. A running average of the weights after every training step (`RunningAverage`, the role of
   `swa_utils.AveragedModel` in the official `trainer.py`). At every validation it is handed to
   the valley rule as one *segment* (a copy of its mean, the steps it covers and the online
   model's validation loss), and then it may be reset:
   - `swad_mode = "standard"`: reset after every validation, so a segment is the mean of the
     steps since the previous validation (SWAD as published; the official ViT-B stage-2 script,
     which passes `--swad_fix`, runs this);
   - `swad_mode = "official_fix"`: the official `train_all.py` default (`--swad_fix` is a
     store_false flag, so it is True unless passed): reset only after validations at steps that
     are multiples of 1000 above 2500, i.e. 3000, 4000, 5000 in a 5000-step run. Each segment is
     then the cumulative mean since step 1 or the last reset (ResNet-50, DeiT-S, ViT-S scripts).
2. A LossValley rule that picks segments from their validation losses (official config.yaml:
   n_converge 3, n_tolerance 6, tolerance_ratio 0.3). The SWAD model is the equal-weight mean of
   the picked segments' means. Two versions:
   - `OfficialLossValley` (`swad_valley = "official"`): the released `swad.LossValley` queue
     logic, quirks included (see its docstring);
   - `LossValley` (`swad_valley = "once"`): the rule as described in the SWAD paper, each segment
     considered once (our corrected version).

BatchNorm statistics of the SWAD model: recomputed on training batches (`swad_model`) only when
BatchNorm is not frozen; the official runs freeze it (DomainBed `freeze_bn`) and skip this.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

SwadMode = Literal["official_fix", "standard"]
ValleyRule = Literal["official", "once"]
FIX_RESET_EVERY, FIX_RESET_AFTER = 1000, 2500  # official trainer: step % 1000 == 0, step > 2500


def reset_due(mode: SwadMode, stage_step: int) -> bool:
    """Whether the running average restarts after the validation at `stage_step` (updates done
    in the current stage)."""
    if mode == "standard":
        return True
    return stage_step % FIX_RESET_EVERY == 0 and stage_step > FIX_RESET_AFTER


@dataclass
class Segment:
    start: int  # first step averaged (inclusive)
    end: int  # last step averaged (inclusive)
    loss: float  # validation loss of the online model at `end`
    mean: dict[str, torch.Tensor] = field(repr=False)  # mean parameters over [start, end]


def _cpu(tensors: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor] | None:
    return None if tensors is None else {k: v.detach().cpu().clone() for k, v in tensors.items()}


class SegmentAverage:
    """Equal-weight mean of segment means (official: an `AveragedModel` whose updates are
    segment models); `count` = number of segments averaged."""

    def __init__(self) -> None:
        self.mean: dict[str, torch.Tensor] | None = None
        self.count, self.start, self.end = 0, -1, -1

    def add(self, seg: Segment) -> None:
        if self.mean is None or self.count == 0:  # AveragedModel: the first update copies
            self.mean = {k: v.clone() for k, v in seg.mean.items()}
            self.start = seg.start
        else:
            for k, v in seg.mean.items():
                self.mean[k] += (v.to(self.mean[k].device) - self.mean[k]) / (self.count + 1)
        self.count += 1
        self.end = seg.end

    def state_dict(self) -> dict:
        return {"mean": _cpu(self.mean), "count": self.count, "start": self.start,
                "end": self.end}

    def load_state_dict(self, state: dict) -> None:
        self.mean, self.count = state["mean"], state["count"]
        self.start, self.end = state["start"], state["end"]


def _seg_state(s: Segment) -> dict:
    return {"start": s.start, "end": s.end, "loss": s.loss, "mean": _cpu(s.mean)}


class LossValley:
    """SWAD's LossValley, each segment considered once (`swad_valley = "once"`).

    - Start: the first time the oldest of the last `n_converge` segments has the lowest loss of
      them. It opens the average; threshold = (1 + tolerance_ratio) x their mean loss. The
      contiguous run of earlier pending segments under the threshold is added too (look-back).
    - A pending segment is added once the next `n_tolerance` segments are known and their
      minimum loss is under the threshold; a minimum above it ends the valley (dead).
    - `finalize`: pending segments are added while the minimum of the rest stays under the
      threshold. Without convergence the last segment is used.
    """

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3):
        if n_converge < 1 or n_tolerance < 1:
            raise ValueError(f"n_converge={n_converge}, n_tolerance={n_tolerance} must be >= 1")
        self.n_converge, self.n_tolerance = n_converge, n_tolerance
        self.tolerance_ratio = tolerance_ratio
        self.pending: deque[Segment] = deque()
        self.average = SegmentAverage()
        self.threshold: float | None = None
        self.dead = False

    @property
    def converged(self) -> bool:
        return self.threshold is not None

    def add(self, seg: Segment) -> None:
        if self.dead:
            return
        self.pending.append(seg)
        if not self.converged:
            self._try_converge()
        elif len(self.pending) >= self.n_tolerance:
            if min(s.loss for s in self.pending) > self.threshold:
                self.dead = True
                self.pending.clear()
            else:
                self.average.add(self.pending.popleft())

    def _try_converge(self) -> None:
        window = list(self.pending)[-self.n_converge:]
        if len(window) < self.n_converge or min(s.loss for s in window) < window[0].loss:
            self.pending = deque(list(self.pending)[-max(self.n_converge, self.n_tolerance):])
            return
        self.threshold = (1 + self.tolerance_ratio) * sum(s.loss for s in window) / len(window)
        lead = []
        for seg in reversed(list(self.pending)[:-self.n_converge]):
            if seg.loss > self.threshold:
                break
            lead.insert(0, seg)
        for seg in [*lead, window[0]]:
            self.average.add(seg)
        self.pending = deque(window[1:])

    def finalize(self) -> None:
        if not self.converged:
            if self.pending and self.average.count == 0:
                self.average.add(self.pending[-1])
            return
        while self.pending and not self.dead:
            if min(s.loss for s in self.pending) > self.threshold:
                break
            self.average.add(self.pending.popleft())

    def state_dict(self) -> dict:
        return {"pending": [_seg_state(s) for s in self.pending],
                "average": self.average.state_dict(), "threshold": self.threshold,
                "dead": self.dead}

    def load_state_dict(self, state: dict) -> None:
        self.pending = deque(Segment(**s) for s in state["pending"])
        self.average.load_state_dict(state["average"])
        self.threshold, self.dead = state["threshold"], state["dead"]


class OfficialLossValley:
    """The released `domainbed/swad.py` LossValley, behaviour for behaviour (our code).

    Two queues of the most recent segments: `converge_q` (length n_converge) and `smooth_q`
    (length n_tolerance). Quirks kept because they shaped the published numbers:
    - at convergence the average is created from the opening segment with count 0, so the next
      added segment overwrites it instead of averaging with it;
    - the look-back (n_tolerance > n_converge) takes the first n_tolerance - n_converge + 1
      entries of `smooth_q`, finds the run at their end whose losses are under the threshold and
      adds that run except its first entry; when `smooth_q` is not yet full these entries
      include segments that come after the opening one;
    - after convergence every validation adds `smooth_q[0]`, which stays the same segment until
      `smooth_q` is full, so early segments can be added several times;
    - without convergence the final model is the last segment.
    """

    def __init__(self, n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3):
        if n_converge < 1 or n_tolerance < 1:
            raise ValueError(f"n_converge={n_converge}, n_tolerance={n_tolerance} must be >= 1")
        self.n_converge, self.n_tolerance = n_converge, n_tolerance
        self.tolerance_ratio = tolerance_ratio
        self.converge_q: deque[Segment] = deque(maxlen=n_converge)
        self.smooth_q: deque[Segment] = deque(maxlen=n_tolerance)
        self.average = SegmentAverage()
        self.converge_step: int | None = None
        self.threshold: float | None = None
        self.dead = False

    @property
    def converged(self) -> bool:
        return self.converge_step is not None

    def add(self, seg: Segment) -> None:
        if self.dead:
            return
        self.converge_q.append(seg)
        self.smooth_q.append(seg)
        if not self.converged:
            if len(self.converge_q) < self.n_converge:
                return
            losses = [s.loss for s in self.converge_q]
            if losses.index(min(losses)) == 0:  # np.argmin: first minimum
                self._open(losses)
            return
        if self.smooth_q[0].end < self.converge_step:
            return
        if min(s.loss for s in self.smooth_q) > self.threshold:
            self.dead = True
            return
        self.average.add(self.smooth_q[0])

    def _open(self, losses: list[float]) -> None:
        first = self.converge_q[0]
        self.converge_step = first.end
        self.average = SegmentAverage()
        self.average.mean = {k: v.clone() for k, v in first.mean.items()}  # count stays 0
        self.threshold = sum(losses) / len(losses) * (1.0 + self.tolerance_ratio)
        if self.n_tolerance < self.n_converge:
            for i in range(self.n_converge - self.n_tolerance):
                self.average.add(self.converge_q[1 + i])
        elif self.n_tolerance > self.n_converge:
            head = list(self.smooth_q)[: self.n_tolerance - self.n_converge + 1]
            start = 0
            for i in reversed(range(len(head))):
                if head[i].loss > self.threshold:
                    start = i + 1
                    break
            for seg in head[start + 1:]:
                self.average.add(seg)

    def finalize(self) -> None:
        if not self.converged:
            self.average = SegmentAverage()
            if self.converge_q:
                self.average.add(self.converge_q[-1])
            return
        if not self.dead:
            self.smooth_q.popleft()
            while self.smooth_q:
                if min(s.loss for s in self.smooth_q) > self.threshold:
                    break
                self.average.add(self.smooth_q.popleft())

    def state_dict(self) -> dict:
        # segments are shared between the queues: store each once, the queues as indices
        segs = list({id(s): s for s in [*self.converge_q, *self.smooth_q]}.values())
        index = {id(s): i for i, s in enumerate(segs)}
        return {"segments": [_seg_state(s) for s in segs],
                "converge_q": [index[id(s)] for s in self.converge_q],
                "smooth_q": [index[id(s)] for s in self.smooth_q],
                "average": self.average.state_dict(), "converge_step": self.converge_step,
                "threshold": self.threshold, "dead": self.dead}

    def load_state_dict(self, state: dict) -> None:
        segs = [Segment(**s) for s in state["segments"]]
        self.converge_q = deque((segs[i] for i in state["converge_q"]), maxlen=self.n_converge)
        self.smooth_q = deque((segs[i] for i in state["smooth_q"]), maxlen=self.n_tolerance)
        self.average.load_state_dict(state["average"])
        self.converge_step, self.threshold = state["converge_step"], state["threshold"]
        self.dead = state["dead"]


class RunningAverage:
    """Mean of the weights after each step since the last reset (official AveragedModel)."""

    def __init__(self) -> None:
        self.sum: dict[str, torch.Tensor] | None = None
        self.count, self.start, self.end = 0, -1, -1

    @torch.no_grad()
    def update(self, model: nn.Module | None, step: int) -> None:
        """Add the weights after `step`; model None counts the step only (loss-only SWAD)."""
        params = {} if model is None else {k: p.detach().float()
                                           for k, p in model.named_parameters()}
        if self.sum is None or self.count == 0:
            self.sum = {k: v.clone() for k, v in params.items()}
            self.start = step
        else:
            for k, v in params.items():
                self.sum[k] += v
        self.count, self.end = self.count + 1, step

    def snapshot(self, loss: float) -> Segment:
        mean = {k: (v / self.count).cpu() for k, v in self.sum.items()}
        return Segment(self.start, self.end, float(loss), mean)

    def reset(self) -> None:
        self.sum, self.count, self.start, self.end = None, 0, -1, -1

    def state_dict(self) -> dict:
        return {"sum": _cpu(self.sum), "count": self.count, "start": self.start, "end": self.end}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        self.sum = None if state["sum"] is None else {
            k: v.to(device) if device is not None else v for k, v in state["sum"].items()}
        self.count, self.start, self.end = state["count"], state["start"], state["end"]


class Swad:
    """SWAD as the training loop sees it: `accumulate` after every step, `close_segment` after
    every validation; `finalize` + `averaged_parameters` at the end."""

    def __init__(self, mode: SwadMode = "official_fix", valley: ValleyRule = "official",
                 n_converge: int = 3, n_tolerance: int = 6, tolerance_ratio: float = 0.3,
                 track_weights: bool = True):
        """track_weights=False: only the valley's losses matter (the Align stage, where the
        official runs use SWAD only for its early stop; stage 2 starts from the online model)."""
        self.mode, self.track_weights = mode, track_weights
        self.running = RunningAverage()
        cls = OfficialLossValley if valley == "official" else LossValley
        self.valley = cls(n_converge, n_tolerance, tolerance_ratio)

    @property
    def dead(self) -> bool:
        return self.valley.dead

    @property
    def converged(self) -> bool:
        return self.valley.converged

    def accumulate(self, model: nn.Module, step: int) -> None:
        if not self.dead:
            self.running.update(model if self.track_weights else None, step)

    def close_segment(self, val_loss: float, stage_step: int) -> None:
        """Hand the running average to the valley rule with the validation loss just measured
        at `stage_step` (updates done in this stage), then reset it when the mode says so."""
        if self.dead or self.running.count == 0:
            return
        self.valley.add(self.running.snapshot(val_loss))
        if reset_due(self.mode, stage_step):
            self.running.reset()

    def finalize(self) -> None:
        self.valley.finalize()

    def averaged_parameters(self) -> dict[str, torch.Tensor] | None:
        """Mean parameters of the SWAD model (float32, CPU), or None if nothing was averaged."""
        avg = self.valley.average
        return None if avg.mean is None else {k: v.clone() for k, v in avg.mean.items()}

    def summary(self) -> dict[str, float]:
        avg = self.valley.average
        return {"swad_start": float(avg.start), "swad_end": float(avg.end),
                "swad_segments": float(avg.count), "swad_converged": float(self.converged),
                "swad_dead_valley": float(self.dead)}

    def state_dict(self) -> dict:
        return {"mode": self.mode, "running": self.running.state_dict(),
                "valley": self.valley.state_dict()}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        if state["mode"] != self.mode:
            raise ValueError(f"SWAD state was saved with swad_mode={state['mode']!r}")
        self.running.load_state_dict(state["running"], device)
        self.valley.load_state_dict(state["valley"])


@torch.no_grad()
def swad_model(model: nn.Module, params: dict[str, torch.Tensor], batches=None) -> nn.Module:
    """`model` with the averaged parameters loaded; BatchNorm statistics recomputed on
    `batches` (an iterable of image tensors) when given and the model has BatchNorm layers
    (official: `update_bn` over 500 batches unless freeze_bn)."""
    for name, p in model.named_parameters():
        p.copy_(params[name].to(device=p.device, dtype=p.dtype))
    if batches is not None and any(isinstance(m, nn.modules.batchnorm._BatchNorm)
                                   for m in model.modules()):
        device = next(model.parameters()).device
        torch.optim.swa_utils.update_bn((x.to(device) for x in batches), model)
    return model.eval()
