"""One GPU check for the whole repository (`make gpu-check`); standard library only.

For every subproject, on a machine with CUDA:
  1. its `gpu`-marked tests   (python -m pytest -q -m gpu)
  2. its paper-preset smoke   (python smoke.py --device cuda  -> runs/smoke/smoke.json)
  3. its benchmark's GPU figures (python bench.py --gpu --json runs/gpu-check/bench.json)
Writes gpu-check.json (one record per subproject and step) and prints a table; exits 1 if any
step failed. Without CUDA it says so, writes {"cuda": false, ...} and exits 0.

The Python used per subproject is its own .venv (built with `make setup-<slug>`), or one given
interpreter for all of them (`--python PY` or GPU_CHECK_PYTHON, e.g. a GPU machine's own torch
install); then each subproject's src/ is put on PYTHONPATH.

  python3 .ci/gpu_check.py [--out gpu-check.json] [--python PY] [--budget_s 480] SLUG [SLUG ...]
  python3 .ci/gpu_check.py --self-test     # checks the table/JSON code and the no-CUDA branch
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Seconds per step; the whole check aims at 8 minutes on one H200 for ten subprojects.
TIMEOUTS = {"setup": 300, "tests": 90, "smoke": 90, "bench": 45}


def cuda_available(python: str | None) -> tuple[bool, str]:
    """(available, reason). nvidia-smi first (cheap, no venv needed), then torch if given."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False, "nvidia-smi not found"
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True)
    if listed.returncode != 0 or "GPU" not in listed.stdout:
        return False, f"nvidia-smi lists no GPU (exit {listed.returncode})"
    if python is not None:
        probe = subprocess.run([python, "-c", "import torch; print(torch.cuda.is_available())"],
                               capture_output=True, text=True)
        if probe.stdout.strip() != "True":
            return False, f"torch in {python} sees no CUDA"
    return True, listed.stdout.strip().splitlines()[0]


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int, float, str]:
    """(exit status, seconds, last 2,000 characters of stdout+stderr); 124 on timeout."""
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as err:
        code = 124
        out = ((err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes)
               else (err.stdout or "")) + f"\n[timed out after {timeout:.0f} s]"
    return code, time.perf_counter() - start, out[-2000:]


def _pytest_counts(tail: str) -> str:
    """The last pytest summary line ('3 passed, 1 skipped in 12.3s'), or ''."""
    lines = [ln for ln in tail.splitlines() if " in " in ln and ("passed" in ln or "skipped" in ln
             or "failed" in ln or "error" in ln or "no tests ran" in ln)]
    return lines[-1].strip("= ") if lines else ""


def check_subproject(slug: str, python: str | None, timeout_scale: float) -> list[dict]:
    """Run the three steps for one subproject; one record per step."""
    folder = ROOT / slug
    env = dict(os.environ, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES=os.environ.get(
        "CUDA_VISIBLE_DEVICES", "0"), TORCH_DEVICE="cuda")
    records = []
    if python is None:
        code, secs, tail = _run(["make", "--no-print-directory", f"setup-{slug}"], ROOT, env,
                                TIMEOUTS["setup"] * timeout_scale)
        if code != 0:
            return [{"subproject": slug, "step": "setup", "ok": False, "seconds": secs,
                     "detail": tail}]
        python = str(folder / ".venv" / "bin" / "python")
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(folder / "src"), env.get("PYTHONPATH", "")])
    out_dir = folder / "runs" / "gpu-check"
    out_dir.mkdir(parents=True, exist_ok=True)
    bench_json = out_dir / "bench.json"
    bench_json.unlink(missing_ok=True)
    steps = {
        "tests": [python, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider"],
        "smoke": [python, "smoke.py", "--device", "cuda"],
        "bench": [python, "bench.py", "--gpu", "--json", str(bench_json)],
    }
    for step, cmd in steps.items():
        code, secs, tail = _run(cmd, folder, env, TIMEOUTS[step] * timeout_scale)
        rec = {"subproject": slug, "step": step, "ok": code == 0, "exit": code,
               "seconds": round(secs, 1), "detail": tail}
        if step == "tests":
            rec["summary"] = _pytest_counts(tail)
            # gpu tests that all skip on a CUDA machine check nothing: count that as a failure
            if code == 0 and "passed" not in rec["summary"]:
                rec["ok"], rec["detail"] = False, "no gpu test passed: " + rec["summary"]
        if step == "smoke":
            smoke = folder / "runs" / "smoke" / "smoke.json"
            rec["figures"] = json.loads(smoke.read_text()) if smoke.is_file() else None
        if step == "bench":
            rec["figures"] = json.loads(bench_json.read_text()) if bench_json.is_file() else None
        records.append(rec)
    return records


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def _short(rec: dict) -> str:
    if rec["step"] == "tests" and rec.get("summary"):
        return rec["summary"]
    figures = rec.get("figures") or {}
    if rec["step"] == "smoke" and figures:
        return (f"wall {figures.get('wall_s')} s, cuda {figures.get('cuda_max_mem_mib')} MiB, "
                f"batch {figures.get('batch_size')}")
    if rec["step"] == "bench" and figures:
        items = list(figures.items())[:3]
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in items)
    return _last_line(rec.get("detail"))


def table(records: list[dict]) -> str:
    lines = [f"{'subproject':<22} {'step':<6} {'result':<7} {'secs':>6}  detail"]
    for rec in records:
        lines.append(f"{rec['subproject']:<22} {rec['step']:<6} "
                     f"{'ok' if rec['ok'] else 'FAILED':<7} {rec.get('seconds', 0):>6}  "
                     f"{_short(rec)[:90]}")
    return "\n".join(lines)


def write_results(path: Path, cuda: bool, reason: str, records: list[dict], seconds: float) -> None:
    path.write_text(json.dumps({"cuda": cuda, "device": reason, "seconds": round(seconds, 1),
                                "ok": all(r["ok"] for r in records), "records": records},
                               indent=2))


def self_test() -> int:
    """Exercise the no-CUDA branch (PATH without nvidia-smi) and the table on made-up records."""
    saved = os.environ.get("PATH", "")
    os.environ["PATH"] = "/nonexistent"
    try:
        ok, reason = cuda_available(None)
    finally:
        os.environ["PATH"] = saved
    assert not ok and "nvidia-smi" in reason, reason
    recs = [{"subproject": "a", "step": "tests", "ok": True, "seconds": 1.0,
             "summary": "2 passed in 1.0s", "detail": ""},
            {"subproject": "a", "step": "bench", "ok": False, "seconds": 2.0, "figures": None,
             "detail": "Traceback\nRuntimeError: boom"}]
    text = table(recs)
    assert "2 passed" in text and "FAILED" in text and "boom" in text, text
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gpu-check.json"
        write_results(out, False, reason, recs, 3.0)
        data = json.loads(out.read_text())
        assert data["ok"] is False and len(data["records"]) == 2, data
    print("gpu_check self-test: ok")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slugs", nargs="*")
    parser.add_argument("--out", default=str(ROOT / "gpu-check.json"))
    parser.add_argument("--python", default=os.environ.get("GPU_CHECK_PYTHON"))
    parser.add_argument("--timeout_scale", type=float, default=1.0)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    start = time.perf_counter()
    cuda, reason = cuda_available(args.python)
    if not cuda:
        print(f"no CUDA ({reason}): gpu-check skipped, nothing was run")
        write_results(Path(args.out), False, reason, [], 0.0)
        return 0
    print(f"gpu-check on {reason}")
    records: list[dict] = []
    for slug in args.slugs:
        recs = check_subproject(slug, args.python, args.timeout_scale)
        for rec in recs:
            print(f"  {slug:<22} {rec['step']:<6} {'ok' if rec['ok'] else 'FAILED'} "
                  f"({rec.get('seconds', 0)} s)", flush=True)
        records += recs
    elapsed = time.perf_counter() - start
    write_results(Path(args.out), True, reason, records, elapsed)
    print("\n== make gpu-check summary ==\n" + table(records))
    failed = sum(not r["ok"] for r in records)
    print(f"total {elapsed:.0f} s, {failed} of {len(records)} steps failed; results in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
