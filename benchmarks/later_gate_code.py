"""The code model under `later_gate`: the engine's bar (``auto``, the default) against 0.999
(``early_stop``) after the current block, LRD's default on Fast-dLLM's threshold rule (the reference
decoder's prefix cache), held-out function bodies of 64 and 128 tokens (so later blocks exist),
thresholds swept, the engine alone beside them. Short contexts, as ``lrd bench --quick``.

    PYTHONPATH=. .venv/bin/python benchmarks/later_gate_code.py --n 16 --out benchmarks/results/code/later_gate
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrd_plugin import LRDConfig
from lrd_plugin.bench import Sampler
from lrd_plugin.code_bench import QUICK_LIMITS, code_examples, run_code_sampler
from lrd_plugin.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="held-out bodies per length")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--out", type=Path, default=Path("runs/later_gate_code"))
    args = parser.parse_args()
    loaded = load_model("code")
    plan = code_examples(loaded, ["body"], args.n, body_lengths=[64, 128], max_span=16, **QUICK_LIMITS)
    rows = []
    for (_, size), examples in plan.items():
        for t in args.thresholds:
            variants = {
                "engine": LRDConfig.base(policy="threshold", threshold=t),
                "+ lrd (later_gate auto)": LRDConfig(policy="threshold", threshold=t),
                "+ lrd (later_gate early_stop)": LRDConfig(policy="threshold", threshold=t, later_gate="early_stop"),
            }
            for name, config in variants.items():
                record = run_code_sampler(
                    loaded, Sampler(name, config, "prefix"), examples, task="body", size=size, block_length=32,
                    batch_size=16,
                )  # fmt: skip
                rows.append({"size": size, "threshold": t, "variant": name, "n": record.n, "exact": record.accuracy,
                             "nfe": record.mean_nfe, **record.scores})  # fmt: skip
                print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    lines = [
        "| body | threshold | variant | n | exact % | parses % | token acc % | NFE |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['threshold']:g} | {r['variant']} | {r['n']} | {100 * r['exact']:.1f} | "
            f"{100 * r['parses']:.1f} | {100 * r['token_accuracy']:.1f} | {r['nfe']:.1f} |"
        )
    (args.out / "results.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
