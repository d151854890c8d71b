"""`mix_min_confidence` (a bare mask below a top-1 floor instead of the mixture) on every trained model
the reference decoder serves: LRD alone (the paper's one-token-per-step policy, no cache) and LRD on
Fast-dLLM's threshold rule (the reference decoder's prefix cache), each floor beside 0 (Eq. 3
everywhere, the default), same prompts, same process; accuracy and forwards per answer (both
deterministic: no wall time here). The code model decodes held-out infills and function bodies
(short contexts, as ``lrd bench --quick``; full contexts with ``--code-full-context``) and reports
token accuracy, parse rate and how many bodies never emit EOS (the runaway the floor is meant to end).

    bash scripts/checkpoints.sh default_v1 run7
    PYTHONPATH=. .venv/bin/python benchmarks/mix_floor.py --floors 0.5 --n 100 --out benchmarks/results/mix_floor
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lrd_plugin import LRDConfig
from lrd_plugin import code_tasks as ct
from lrd_plugin.bench import Sampler, run_benchmark
from lrd_plugin.code_bench import QUICK_LIMITS, code_examples
from lrd_plugin.loading import LoadedModel, learnt_tasks, load_model
from lrd_plugin.tasks import TASKS

SUITE_MODELS = ("default", "benchmarks/checkpoints/default_v1", "benchmarks/checkpoints/run7")


def samplers(floors: list[float], threshold: float) -> list[Sampler]:
    """LRD alone and on the threshold rule, at floor 0 and at each floor."""
    out = []
    for floor in [0.0, *floors]:
        out.append(Sampler(f"lrd (floor {floor:g})", LRDConfig(mix_min_confidence=floor), "none"))
        composed = LRDConfig(policy="threshold", threshold=threshold, mix_min_confidence=floor)
        out.append(Sampler(f"lrd+threshold {threshold:g} (floor {floor:g})", composed, "prefix"))
    return out


def code_rows(loaded: LoadedModel, sampler: Sampler, examples: list[ct.CodeExample], task: str, size: int) -> dict:
    """Decode one code slice: token accuracy, parse rate, forwards, and bodies that never emit EOS
    (`code_bench.run_code_sampler` scores a slice too, but keeps no generated rows to count EOS in)."""
    tok = loaded.tokenizer
    chunks = ct.decode_chunks(
        loaded.denoiser, examples, tok.mask_id, tok.pad_id, config=sampler.config, cache=sampler.cache,
        block_length=32, batch_size=16, device=loaded.device,
    )  # fmt: skip
    scores, forwards, endless = [], [], 0
    for members, out, _ in chunks:
        for i, row, nfe in zip(members, out.generated.tolist(), out.nfe_per_sequence.tolist(), strict=True):
            scores.append(ct.score(examples[i], row, tok))
            forwards.append(nfe)
            endless += task == "body" and tok.eos_id not in row
    summary = ct.summarize(scores)
    return {"model": "code", "task": task, "size": size, "sampler": sampler.name, "n": len(scores),
            "accuracy": summary["token_accuracy"], "parses": summary["parses"], "nfe": sum(forwards) / len(forwards),
            "max_nfe": max(forwards), "no_eos": endless}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floors", type=float, nargs="+", default=[0.3, 0.5])
    parser.add_argument("--models", default=",".join(SUITE_MODELS), help="comma list of suite models ('' for none)")
    parser.add_argument("--gen-lengths", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--n", type=int, default=100, help="held-out prompts per task")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--code-n", type=int, default=32, help="held-out code examples per slice")
    parser.add_argument("--code-lengths", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--code-full-context", action="store_true", help="the full run's contexts, not --quick's")
    parser.add_argument("--out", type=Path, default=Path("runs/mix_floor"))
    args = parser.parse_args()
    rows = []
    for spec in filter(None, args.models.split(",")):
        loaded = load_model(spec)
        tasks = learnt_tasks(TASKS, loaded.trained_tasks)[:3]  # arith, list, Sudoku where learnt
        records = run_benchmark(
            loaded, samplers(args.floors, 0.9), tasks=tasks, gen_lengths=args.gen_lengths, block_length=32,
            n=args.n, batch_size=args.batch_size, progress=False,
        )  # fmt: skip
        for r in records:
            rows.append({"model": spec, "task": r.task, "size": r.gen_length, "sampler": r.sampler, "n": r.n,
                         "accuracy": r.accuracy, "nfe": r.mean_nfe})  # fmt: skip
            print(rows[-1], flush=True)
    code = load_model("code")
    limits = {} if args.code_full_context else QUICK_LIMITS
    tasks = ["infill_line", "infill_block", "body"]
    plan = code_examples(code, tasks, args.code_n, body_lengths=args.code_lengths, max_span=16, **limits)
    for (task, size), examples in plan.items():
        for sampler in samplers(args.floors, 0.9):
            rows.append(code_rows(code, sampler, examples, task, size))
            print(rows[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    (args.out / "results.md").write_text(markdown(rows, [0.0, *args.floors]))


def markdown(rows: list[dict], floors: list[float]) -> str:
    """One line per model x task x size x decoder: each floor's accuracy and forwards (code: token
    accuracy, parse rate and bodies without EOS)."""
    grouped: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        decoder, floor = r["sampler"].rsplit(" (floor ", 1)
        grouped.setdefault((r["model"], r["task"], r["size"], decoder, r["n"]), {})[floor.rstrip(")")] = r
    head = " | ".join(f"floor {f:g}: acc %, NFE" for f in floors)
    lines = [f"| model | task | size | decoder | n | {head} |", "|---|---|---:|---|---:|" + "---:|" * len(floors)]
    for (model, task, size, decoder, n), by_floor in grouped.items():
        cells = []
        for f in floors:
            r = by_floor[f"{f:g}"]
            extra = f" (parses {100 * r['parses']:.0f}, no EOS {r['no_eos']})" if "parses" in r else ""
            cells.append(f"{100 * r['accuracy']:.1f}{extra}, {r['nfe']:.2f}")
        lines.append(f"| {model} | {task} | {size} | {decoder} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
