"""Evaluate a run: python eval.py --ckpt <run>/ckpt/last.pt

Writes <run>/eval/eval.json (per-domain, ID and OOD accuracy of the selected student and of the
teacher's zero-shot classifier) and <run>/eval/accuracy_per_domain.png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> dict:
    from vl2v_adip.engine import evaluate
    from vl2v_adip.figures import plot_domain_accuracies

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", required=True, help="<run>/ckpt/last.pt")
    args = parser.parse_args(argv)
    result = evaluate(args.ckpt)
    out_dir = Path(args.ckpt).resolve().parent.parent / "eval"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "eval.json").write_text(json.dumps(result, indent=2))
    bars = {name: result[key] for key, name in (("student", f"student ({result['method']})"),
                                                 ("teacher_zeroshot", "teacher zero-shot"))
            if key in result}
    plot_domain_accuracies(bars, result["domains"], result["test_domain"],
                           out_dir / "accuracy_per_domain.png")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
