"""Flower apps for CLAP collaborative training (Sec. 3.2): ClientApp, ServerApp, strategies.

Message flow of one run (everything goes through Flower's Grid; no home-made transport):
1. query  (server -> all nodes): each participant clusters its own videos (coarse pseudo-labels)
   and replies with three numbers, (mu, var, n) of its normal-snippet magnitudes (CKDS).
2. train  (rounds 1..R): the server sends the global weights plus every participant's (mu, var, n);
   each participant forms its fine pseudo-labels, trains `local_epochs` epochs and replies with its
   weights (SCAFFOLD: plus its control-variate change) and its snippet count. The strategy
   (FedAvg / FedProx / SCAFFOLD) aggregates; a failed participant is logged and left out.

The same `ClientApp`/`ServerApp` objects run (a) inside `flwr.simulation.run_simulation` with the
Ray backend, (b) inside `run_simulation` with `InProcessBackend` (Flower's simulation runtime,
LinkState and InMemoryGrid, with ClientApps executed in the calling process instead of Ray actors:
light enough for CPU tests), and (c) as separate processes (SuperLink + SuperNodes + `flwr run`,
see README), where the config comes from the run config.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from flwr.app import (
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg, FedProx
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from .builders import build_model, build_participant
from .config import Config, config_from_dict, parse_config
from .runtime import resolve_device

CVAR = "cvar."  # key prefix of SCAFFOLD control variates inside the single ArrayRecord


# ----------------------------------------------------------------------------- client side


@functools.lru_cache(maxsize=8)
def _participant_cached(cfg_json: str, pid: int):
    return build_participant(config_from_dict(json.loads(cfg_json)), pid)


def participant_for(cfg: Config, pid: int):
    """The participant's private data holder, built once per process."""
    return _participant_cached(json.dumps(asdict(cfg), sort_keys=True), pid)


def _cfg_from_context(context: Context, cfg: Config | None) -> Config:
    """Simulation passes the Config by closure; deployment reads it from the run config."""
    if cfg is not None:
        return cfg
    rc = dict(context.run_config)
    argv = ["--config", str(rc["config"])] if rc.get("config") else []
    argv += str(rc.get("overrides", "")).split()
    return parse_config(argv)


def _pid(context: Context) -> int:
    return int(context.node_config["partition-id"])


def query_handler(msg: Message, context: Context, cfg: Config) -> Message:
    """CKDS: reply with (mu, var, n) of the normal-snippet magnitudes, nothing else."""
    part = participant_for(cfg, _pid(context))
    mu, var, n = part.normal_statistics()
    stats = MetricRecord({"pid": _pid(context), "mu": mu, "var": var, "n": n})
    return Message(content=RecordDict({"stats": stats}), reply_to=msg)


def _labels(part, cfg: Config, conf: ConfigRecord, context: Context) -> np.ndarray:
    """Fine pseudo-labels from the shared statistics (kept in the node state when refined)."""
    key = "clap-labels"
    if key in context.state.array_records:
        return context.state[key]["labels"].numpy().copy()
    if not cfg.pl_share_stats:  # ablation: federated training on purely local pseudo-labels
        return part.snippet_labels([part.normal_statistics()])
    stats = list(zip(conf["ckds-mu"], conf["ckds-var"], conf["ckds-n"]))
    return part.snippet_labels(stats)


def train_handler(msg: Message, context: Context, cfg: Config) -> Message:
    """Local training on pseudo-labels; replies with weights and the snippet count only."""
    pid = _pid(context)
    conf: ConfigRecord = msg.content["config"]
    round_abs = int(conf["server-round"]) + int(conf.get("round-offset", 0))
    if pid == cfg.fl_fail_participant and round_abs == cfg.fl_fail_round:
        raise RuntimeError(f"injected failure of participant {pid} in round {round_abs}")
    part = participant_for(cfg, pid)
    device = resolve_device(cfg.device)
    received = msg.content["arrays"].to_torch_state_dict()
    weights = {k: v for k, v in received.items() if not k.startswith(CVAR)}
    model = build_model(cfg).to(device)
    model.load_state_dict(weights, strict=True)
    labels = _labels(part, cfg, conf, context)
    control = None
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if cfg.fl_strategy == "scaffold":
        c_global = [received[CVAR + n] for n in names]
        c_local = ([context.state["scaffold-c"].to_torch_state_dict()[n] for n in names]
                   if "scaffold-c" in context.state.array_records
                   else [torch.zeros_like(c) for c in c_global])
        control = (c_global, c_local)
    part.optim = _with_mu(part.optim, float(conf.get("proximal-mu", 0.0)))
    out = part.train(model, labels, round_abs, device, control)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if control is not None:  # SCAFFOLD option II: c_i+ = c_i - c + (x - y) / (K lr)
        coef = 1.0 / (out["steps"] * cfg.lr)
        for n, c, c_i in zip(names, *control):
            c_plus = c_i - c + coef * (weights[n] - state[n])
            state[CVAR + n] = c_plus - c_i  # the change only
            c_i.copy_(c_plus)
        context.state["scaffold-c"] = ArrayRecord({n: c for n, c in zip(names, control[1])})
    if cfg.pl_refine_every > 0 and round_abs % cfg.pl_refine_every == 0:
        labels = part.refine(model, labels, device)
    if cfg.pl_refine_every > 0:
        context.state["clap-labels"] = ArrayRecord({"labels": torch.from_numpy(labels)})
    metrics = MetricRecord({"num-examples": out["num-examples"], "train-loss": out["loss"]})
    return Message(content=RecordDict({"arrays": ArrayRecord(state), "metrics": metrics}),
                   reply_to=msg)


def _with_mu(optim, mu: float):
    from dataclasses import replace

    return replace(optim, proximal_mu=mu)


def make_client_app(cfg: Config | None = None) -> ClientApp:
    """ClientApp whose handlers close over `cfg` (None: read it from the run config)."""
    app = ClientApp()

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        return query_handler(msg, context, _cfg_from_context(context, cfg))

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        return train_handler(msg, context, _cfg_from_context(context, cfg))

    return app


# ----------------------------------------------------------------------------- strategies


class _FailureLog:
    """Records how many replies of each training round succeeded or failed (`round_log`),
    then aggregates with the strategy it is mixed into."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.round_log: dict[int, dict] = {}

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        return super().aggregate_train(server_round, self._record(server_round, list(replies)))

    def _record(self, server_round: int, replies: list[Message]) -> list[Message]:
        ok = [m for m in replies if not m.has_error()]
        failed = [m for m in replies if m.has_error()]
        entry = {"clients_ok": len(ok), "clients_failed": len(failed),
                 "failures": [m.error.reason[:200] for m in failed]}
        if ok:
            n = np.array([float(m.content["metrics"]["num-examples"]) for m in ok])
            loss = np.array([float(m.content["metrics"]["train-loss"]) for m in ok])
            entry["train_loss"] = float((n * loss).sum() / n.sum())
        self.round_log[server_round] = entry
        return replies


class ClapFedAvg(_FailureLog, FedAvg):
    """FedAvg weighted by snippet counts (the official server's `aggregate`)."""


class ClapFedProx(_FailureLog, FedProx):
    """FedProx: FedAvg aggregation, clients add mu/2 ||w - w_global||^2."""


class ClapScaffold(ClapFedAvg):
    """SCAFFOLD (Karimireddy et al. 2020) on Flower's message API.

    The server control variate c rides in the train ArrayRecord under `cvar.<name>`; clients keep
    c_i in their node state and reply with weights plus delta c_i. Weights are averaged as in
    FedAvg (global step size 1); c <- c + (1 / P) sum_i delta c_i over the P participants.
    """

    def __init__(self, num_participants: int, c_global: dict[str, torch.Tensor] | None = None,
                 **kw) -> None:
        super().__init__(**kw)
        self.num_participants = num_participants
        self.c_global = c_global

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        weights = arrays.to_torch_state_dict()
        if self.c_global is None:
            self.c_global = {k: torch.zeros_like(v) for k, v in weights.items()
                             if v.dtype.is_floating_point}
        merged = ArrayRecord({**weights, **{CVAR + k: v for k, v in self.c_global.items()}})
        return super().configure_train(server_round, merged, config, grid)

    def aggregate_train(self, server_round: int, replies: Iterable[Message]):
        replies = [m for m in self._record(server_round, list(replies)) if not m.has_error()]
        if not replies:
            return None, None
        deltas = {k: torch.zeros_like(v) for k, v in self.c_global.items()}
        records = []
        for m in replies:
            state = m.content["arrays"].to_torch_state_dict()
            for k in deltas:
                deltas[k] += state.pop(CVAR + k) / self.num_participants
            records.append(RecordDict({"arrays": ArrayRecord(state),
                                       "metrics": m.content["metrics"]}))
        self.c_global = {k: v + deltas[k] for k, v in self.c_global.items()}
        arrays = aggregate_arrayrecords(records, self.weighted_by_key)
        return arrays, self.train_metrics_aggr_fn(records, self.weighted_by_key)


def make_strategy(cfg: Config, num_participants: int, c_global=None):
    common = {"fraction_train": cfg.fl_fraction_train, "fraction_evaluate": 0.0,
              "min_train_nodes": 1, "min_available_nodes": num_participants}
    if cfg.fl_strategy == "fedprox":
        return ClapFedProx(proximal_mu=cfg.fl_proximal_mu, **common)
    if cfg.fl_strategy == "scaffold":
        return ClapScaffold(num_participants=num_participants, c_global=c_global, **common)
    return ClapFedAvg(**common)


# ----------------------------------------------------------------------------- server side


@dataclass
class ServerHooks:
    """What the ServerApp needs from the engine: start point, per-round callback, results."""

    initial_state: dict[str, torch.Tensor]
    start_round: int = 0
    c_global: dict[str, torch.Tensor] | None = None
    on_round: Callable[[int, dict[str, torch.Tensor], object], dict] | None = None
    result: dict = field(default_factory=dict)


def collect_statistics(grid: Grid, num_participants: int, timeout: float) -> list[tuple]:
    """CKDS exchange: query every node for (mu, var, n); returns them ordered by participant."""
    deadline = time.time() + timeout
    while len(list(grid.get_node_ids())) < num_participants and time.time() < deadline:
        time.sleep(0.2)
    msgs = [Message(content=RecordDict({"config": ConfigRecord({})}), dst_node_id=n,
                    message_type=MessageType.QUERY) for n in grid.get_node_ids()]
    replies = [m for m in grid.send_and_receive(msgs, timeout=timeout) if not m.has_error()]
    stats = sorted((int(m.content["stats"]["pid"]), float(m.content["stats"]["mu"]),
                    float(m.content["stats"]["var"]), int(m.content["stats"]["n"]))
                   for m in replies)
    if not stats:
        raise RuntimeError("no participant answered the statistics query")
    return [s[1:] for s in stats]


def run_server(grid: Grid, cfg: Config, num_participants: int, hooks: ServerHooks) -> None:
    """The ServerApp body: CKDS statistics, then `cfg.steps - start_round` strategy rounds."""
    stats = collect_statistics(grid, num_participants, timeout=600)
    mus, variances, counts = zip(*stats)
    train_config = ConfigRecord({"ckds-mu": list(mus), "ckds-var": list(variances),
                                 "ckds-n": [int(c) for c in counts],
                                 "round-offset": hooks.start_round})
    strategy = make_strategy(cfg, num_participants, hooks.c_global)
    hooks.result.update(strategy=strategy, stats=stats)

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0 or hooks.on_round is None:
            return None
        metrics = hooks.on_round(hooks.start_round + server_round, arrays.to_torch_state_dict(),
                                 strategy)
        return MetricRecord({k: float(v) for k, v in metrics.items()}) if metrics else None

    remaining = cfg.steps - hooks.start_round
    if remaining <= 0:
        hooks.result["state"] = hooks.initial_state
        return
    res = strategy.start(grid=grid, initial_arrays=ArrayRecord(hooks.initial_state),
                         num_rounds=remaining, train_config=train_config, evaluate_fn=evaluate_fn)
    hooks.result["state"] = res.arrays.to_torch_state_dict()


def make_server_app(cfg: Config | None, num_participants: int | None,
                    hooks: ServerHooks | None,
                    deploy_main: Callable[[Grid, Config], object] | None = None) -> ServerApp:
    """ServerApp closing over the engine's hooks; with `deploy_main` (deployment, `flwr run`,
    see deploy.py) it reads the config from the run config and hands the Grid to it."""
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        if deploy_main is not None:
            deploy_main(grid, _cfg_from_context(context, cfg))
        else:
            run_server(grid, cfg, num_participants, hooks)

    return app


# ----------------------------------------------------------------------------- simulation


def _in_process_backend():
    from flwr.clientapp.client_app import ClientAppException, LoadClientAppError
    from flwr.server.superlink.fleet.vce.backend import Backend

    class InProcessBackend(Backend):
        """Flower simulation Backend that runs each ClientApp call in the calling process."""

        def __init__(self, backend_config) -> None:
            super().__init__(backend_config)
            self.app_fn = None

        def build(self, app_fn) -> None:
            self.app_fn = app_fn

        @property
        def num_workers(self) -> int:
            return 1

        def is_worker_idle(self) -> bool:
            return True

        def terminate(self) -> None:
            self.app_fn = None

        def process_message(self, message, context):
            try:
                return self.app_fn()(message=message, context=context), context
            except LoadClientAppError:
                raise
            except Exception as ex:  # same contract as Flower's Ray actor
                raise ClientAppException(str(ex)) from ex

    return InProcessBackend


@contextlib.contextmanager
def _backend(name: str):
    """Swap Flower's simulation backend class for the duration of one run_simulation call."""
    if name == "ray":
        yield
        return
    from flwr.server.superlink.fleet.vce.backend import raybackend

    original = raybackend.RayBackend
    raybackend.RayBackend = _in_process_backend()
    try:
        yield
    finally:
        raybackend.RayBackend = original


def simulate(cfg: Config, num_participants: int, hooks: ServerHooks) -> dict:
    """Run the ServerApp and P ClientApps with Flower's simulation runtime."""
    from flwr.simulation import run_simulation

    backend_config = {"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                      "init_args": {"logging_level": "ERROR", "log_to_driver": False}}
    if cfg.fl_backend == "ray" and torch.cuda.is_available():
        backend_config["client_resources"]["num_gpus"] = 1.0 / max(1, num_participants)
    with _backend(cfg.fl_backend):
        run_simulation(server_app=make_server_app(cfg, num_participants, hooks),
                       client_app=make_client_app(cfg), num_supernodes=num_participants,
                       backend_config=backend_config)
    if "state" not in hooks.result:
        raise RuntimeError("Flower simulation ended without a result (see the log above)")
    return hooks.result
