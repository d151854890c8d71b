"""`later_commit` on every trained model the reference decoder serves: when the sequence-scope stop
may commit positions after the current block, ``block_end`` (only on the forward that finishes the
block) against ``every_step``. LRD alone (the paper's one-token-per-step policy, no cache) and LRD on
Fast-dLLM's threshold rule (the reference decoder's prefix cache), same prompts, same process;
accuracy and forwards per answer (both deterministic: no wall time here). The code model decodes
held-out function bodies (short contexts, as ``lrd bench --quick``). Fast-dLLM's own loops are
measured by ``fast_dllm_composed.py`` (``--variants "…,fast-dllm + lrd (later at block end)"``).

    bash scripts/checkpoints.sh default_v1 run7
    PYTHONPATH=. .venv/bin/python benchmarks/later_commit.py --n 100 --out benchmarks/results/later_commit
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrd_plugin import LRDConfig
from lrd_plugin.bench import Sampler, run_benchmark
from lrd_plugin.code_bench import QUICK_LIMITS, code_examples, run_code_sampler
from lrd_plugin.config import LATER_COMMITS
from lrd_plugin.loading import learnt_tasks, load_model
from lrd_plugin.tasks import TASKS

SUITE_MODELS = ("default", "benchmarks/checkpoints/default_v1", "benchmarks/checkpoints/run7")


def samplers(threshold: float) -> list[Sampler]:
    """LRD alone and on the threshold rule, under each `later_commit`."""
    out = []
    for when in LATER_COMMITS:
        out.append(Sampler(f"lrd ({when})", LRDConfig(later_commit=when), "none"))
        composed = LRDConfig(policy="threshold", threshold=threshold, later_commit=when)
        out.append(Sampler(f"lrd+threshold {threshold:g} ({when})", composed, "prefix"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(SUITE_MODELS), help="comma list of suite models")
    parser.add_argument("--gen-lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--n", type=int, default=100, help="held-out prompts per task")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--code-n", type=int, default=16, help="held-out function bodies per length")
    parser.add_argument("--code-lengths", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--code-thresholds", type=float, nargs="+", default=[0.5, 0.9])
    parser.add_argument("--out", type=Path, default=Path("runs/later_commit"))
    args = parser.parse_args()
    rows = []
    for spec in args.models.split(","):
        loaded = load_model(spec)
        tasks = learnt_tasks(TASKS, loaded.trained_tasks)[:3]  # arith, list, Sudoku where learnt
        records = run_benchmark(
            loaded, samplers(0.9), tasks=tasks, gen_lengths=args.gen_lengths, block_length=32, n=args.n,
            batch_size=args.batch_size, progress=False,
        )  # fmt: skip
        for r in records:
            rows.append({"model": spec, "task": r.task, "size": r.gen_length, "sampler": r.sampler,
                         "accuracy": r.accuracy, "nfe": r.mean_nfe})  # fmt: skip
            print(rows[-1], flush=True)
    code = load_model("code")
    plan = code_examples(code, ["body"], args.code_n, body_lengths=args.code_lengths, max_span=16, **QUICK_LIMITS)
    for (_, size), examples in plan.items():
        for threshold in args.code_thresholds:
            for sampler in samplers(threshold):
                r = run_code_sampler(code, sampler, examples, task="body", size=size, block_length=32, batch_size=16)
                rows.append({"model": "code", "task": "body", "size": size, "sampler": sampler.name,
                             "accuracy": r.scores["token_accuracy"], "parses": r.scores["parses"],
                             "nfe": r.mean_nfe})  # fmt: skip
                print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(rows))


def markdown(rows: list[dict]) -> str:
    """One line per model x task x size x decoder: each `later_commit`'s accuracy and forwards (code:
    token accuracy and parse rate)."""
    grouped: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        decoder, when = r["sampler"].rsplit(" (", 1)
        grouped.setdefault((r["model"], r["task"], r["size"], decoder), {})[when.rstrip(")")] = r
    head = " | ".join(f"{w}: acc %, NFE" for w in LATER_COMMITS)
    lines = [f"| model | task | size | decoder | {head} |", "|---|---|---:|---|" + "---:|" * len(LATER_COMMITS)]
    for (model, task, size, decoder), by_when in grouped.items():
        cells = []
        for when in LATER_COMMITS:
            r = by_when[when]
            parses = f" (parses {100 * r['parses']:.1f})" if "parses" in r else ""
            cells.append(f"{100 * r['accuracy']:.1f}{parses}, {r['nfe']:.2f}")
        lines.append(f"| {model} | {task} | {size} | {decoder} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
