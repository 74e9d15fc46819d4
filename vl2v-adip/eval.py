"""Evaluate a run: python eval.py --ckpt <run>/ckpt/last.pt [--device D] [--eval_batch_size N]
                                  [--data_root DIR] [--debug]

Writes <run>/eval/eval.json (per-domain, ID and OOD accuracy of the final student and of the
teacher's zero-shot classifier) and <run>/eval/accuracy_per_domain.png. The run's config comes
from the checkpoint; the options above override where and how it is evaluated.
"""

from __future__ import annotations

import json
from pathlib import Path

from vl2v_adip.runtime import ConfigError, UserError, cli

OVERRIDES = ("device", "eval_batch_size", "data_root")


def parse_args(argv: list[str]) -> tuple[str, dict[str, str]]:
    """--ckpt PATH plus optional --<override> VALUE pairs."""
    usage = "python eval.py --ckpt <run>/ckpt/last.pt [--device D] [--eval_batch_size N]"
    if len(argv) % 2 or any(not a.startswith("--") for a in argv[::2]):
        raise ConfigError(f"expected --option value pairs, got {argv}", usage)
    args = {a[2:]: v for a, v in zip(argv[::2], argv[1::2])}
    unknown = sorted(set(args) - {"ckpt", *OVERRIDES})
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}", f"valid: ckpt, {', '.join(OVERRIDES)}")
    if "ckpt" not in args:
        raise ConfigError("--ckpt is required", usage)
    return args.pop("ckpt"), args


def main(argv: list[str] | None = None) -> dict:
    from vl2v_adip.engine import evaluate
    from vl2v_adip.figures import plot_domain_accuracies

    ckpt, overrides = parse_args(list(argv or []))
    result = evaluate(ckpt, overrides)
    out_dir = Path(ckpt).resolve().parent.parent / "eval"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "eval.json").write_text(json.dumps(result, indent=2))
    except OSError as err:
        raise UserError(f"cannot write {out_dir} ({type(err).__name__})",
                        "evaluate a checkpoint in a writable run folder") from None
    bars = {name: result[key] for key, name in (("student", f"student ({result['method']})"),
                                                 ("teacher_zeroshot", "teacher zero-shot"))
            if key in result}
    plot_domain_accuracies(bars, result["domains"], result["test_domain"],
                           out_dir / "accuracy_per_domain.png")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    cli(main)
