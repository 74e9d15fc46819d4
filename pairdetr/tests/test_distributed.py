"""DDP on CPU (gloo): every rank evaluates its shard inside the training loop (issue 24: rank 0
alone evaluating while the others wait in the next all-reduce risks the NCCL timeout), and the
gathered result equals a single process evaluating the same weights."""

import dataclasses
import json
import math
import multiprocessing
import os

import pytest
import torch

from pairdetr import engine, runtime
from pairdetr.config import config_from_dict


def _worker(rank: int, world: int, init_file: str, cfg_values: dict, out: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank),
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=world)
    result = engine.fit(config_from_dict(cfg_values))  # eval_every=1: evaluates inside the loop
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({k: v for k, v in result.items() if k.startswith("val_")}, f)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _two_ranks(target, *args, timeout: float = 120) -> list:
    """Exit codes of target(rank, *args) run in two processes, "hung" for one still running
    after `timeout` s (then terminated). fork (Linux) reuses this process's imports: a spawned
    rank would re-import torch and transformers (tens of seconds on a loaded 2-core machine)."""
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      else "spawn")
    procs = [ctx.Process(target=target, args=(r, *args)) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=timeout)
    codes = ["hung" if p.is_alive() else p.exitcode for p in procs]
    for p in procs:
        if p.is_alive():
            p.terminate()
    return codes


def test_two_gloo_ranks_evaluate_like_one_process(tiny_cfg, tmp_path):
    cfg = dataclasses.replace(tiny_cfg, steps=2, eval_every=1, data_num_val=5, save_every=1,
                              batch_size=1, out_dir=str(tmp_path / "run"))
    # import the lazy parts here, so that the forked ranks start with them (see _two_ranks)
    runtime.set_determinism(cfg.deterministic)
    engine.build_model(cfg)
    assert _two_ranks(_worker, 2, str(tmp_path / "init"), dataclasses.asdict(cfg), str(tmp_path),
                      timeout=600) == [0, 0]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every rank pooled the same gathered summaries
    val = [json.loads(line) for line in (tmp_path / "run/metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in val if r["split"] == "val"] == [1, 2]  # in-loop + final
    # one process, the final weights: the same numbers
    model, saved, _ = engine.load_trained(tmp_path / "run/ckpt/last.pt", torch.device("cpu"))
    single, _, _ = engine.evaluate_model(model, saved, torch.device("cpu"))
    assert single["num_images"] == 5.0
    for key, value in single.items():
        assert _same(ranks[0][f"val_{key}"], value), key


def test_dist_backend_env_is_honoured(monkeypatch):
    import torch.distributed as dist

    seen = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: seen.update(b=backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 0)
    monkeypatch.setenv("DIST_BACKEND", "mpi")
    assert runtime.init_distributed("cpu")[:2] == (0, 2) and seen["b"] == "mpi"
    monkeypatch.delenv("DIST_BACKEND")
    runtime.init_distributed("cpu")
    assert seen["b"] == "gloo"  # default on CPU (nccl on CUDA)


@pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")
def test_checkpoint_has_no_cuda_state_on_cpu(tiny_cfg, tmp_path):
    engine.fit(dataclasses.replace(tiny_cfg, steps=1, out_dir=str(tmp_path)))
    ckpt = runtime.load_checkpoint(tmp_path / "ckpt/last.pt")
    assert ckpt["cuda_rng"] is None and "torch_rng" in ckpt
    records = runtime.read_metrics(tmp_path)
    assert not any("cuda_max_mem_mib" in r for r in records)


def _probe_many(rank: int, folder: str, n: int) -> None:
    for _ in range(n):
        runtime.make_run_dir(folder, "x")


def test_ranks_creating_one_run_folder_at_once_do_not_collide(tmp_path):
    # CI failure: with one fixed probe name, rank 1 deleted rank 0's write probe between its
    # write and its unlink (FileNotFoundError, reported as an unwritable run folder)
    assert _two_ranks(_probe_many, str(tmp_path / "run"), 300) == [0, 0]
    assert sorted(f.name for f in (tmp_path / "run").iterdir()) == ["ckpt"]  # no probe left


def _run_dir_worker(rank: int, init_file: str, cwd: str, out_dir: str, result: str) -> None:
    os.chdir(cwd)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                                         world_size=2)
    # ranks that reach the folder in different seconds: each sees its own clock
    runtime.time.strftime = lambda fmt: f"clock-of-rank{rank}"
    cfg = config_from_dict({"config_name": "tiny", "out_dir": out_dir})
    try:
        text = str(engine._shared_run_dir(cfg, rank, 2))
    except runtime.UserError as err:
        text = f"UserError: {err}"
    with open(os.path.join(result, f"rank{rank}.txt"), "w") as f:
        f.write(text)


def test_ranks_share_rank0s_timestamped_run_folder(tmp_path):
    assert _two_ranks(_run_dir_worker, str(tmp_path / "init"), str(tmp_path), "",
                      str(tmp_path)) == [0, 0]
    seen = {(tmp_path / f"rank{r}.txt").read_text() for r in range(2)}
    assert seen == {"runs/tiny/clock-of-rank0"}
    assert [p.name for p in (tmp_path / "runs" / "tiny").iterdir()] == ["clock-of-rank0"]


def test_an_unwritable_run_folder_is_one_error_on_every_rank(tmp_path):
    (tmp_path / "a_file").write_text("")
    assert _two_ranks(_run_dir_worker, str(tmp_path / "init"), str(tmp_path),
                      str(tmp_path / "a_file" / "run"), str(tmp_path)) == [0, 0]
    for r in range(2):  # neither rank waits for a folder name that never comes
        assert (tmp_path / f"rank{r}.txt").read_text().startswith(
            "UserError: cannot write the run folder")
