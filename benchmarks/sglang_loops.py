"""LRD against SGLang's LowConfidence inside the released SGLang's own dLLM loops, on the embedded default.

    LRD_REQUIRE_SGLANG=1 .venv-sglang/bin/python benchmarks/sglang_loops.py [--n 200] [--sync] [--model DIR] \\
        [--gen-lengths 64,128,256] [--stop-at-eos]

(`.venv-sglang` is what `bash scripts/test.sh` builds.) Every algorithm decodes the same held-out
prompts of each task (gen 64 = two blocks of 32; `--stop-at-eos` ends a request after the block that
holds its EOS, as SGLang does) through `DllmAlgorithm.run` with the test harness's model runner
(`integration_tests/sglang/harness.py`: the embedded default in its block-diffusion attention behind
SGLang's `VocabParallelEmbedding` and input preparation, a per-request KV cache that keeps each
block's last forward). Reported: accuracy (exact match, or validity for the constraint tasks),
forwards per request (NFE, the final hard-token forward included), scheduler rounds, and the wall
seconds of the whole batch (`seconds`: the harness's runner, not SGLang's, so it compares the
algorithms' own work, not a server's latency). With `--wall-runs R` every task and length is served R
times, the algorithms in turn forwards and backwards, and each row keeps every run's seconds
(`seconds_runs`; `seconds` is their median): a wall ratio is read per run, in one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "integration_tests" / "sglang")]

import conftest  # noqa: E402,F401  # the documented torchvision import stand-in, before SGLang
from harness import Request, TinyModelRunner, serve  # noqa: E402
from sglang.srt.dllm.algorithm.low_confidence import LowConfidence  # noqa: E402
from sglang.srt.dllm.config import DllmConfig  # noqa: E402

from lrd_plugin import tasks  # noqa: E402
from lrd_plugin.integrations.sglang.algorithm import LRD  # noqa: E402
from lrd_plugin.loading import DEFAULT_DIR, learnt_tasks, trained_tasks  # noqa: E402
from lrd_plugin.models import CharTokenizer, LLaDAModel  # noqa: E402

BLOCK = 32
RUNS = [
    ("LowConfidence t=1 (one token per step)", LowConfidence, {"threshold": 1.0}),
    ("LowConfidence t=0.95", LowConfidence, {"threshold": 0.95}),
    ("LowConfidence t=0.9", LowConfidence, {"threshold": 0.9}),
    ("LRD, features off, t=0.9", LRD, {"threshold": 0.9, "refinement": False, "mixing": False, "early_stop": False}),
    ("LRD paper settings, t=0.9", LRD, {"threshold": 0.9, "early_stop_rule": "paper"}),
    ("LRD default (per_position stop), t=0.9", LRD, {"threshold": 0.9}),
    ("LRD no early stop, t=0.9", LRD, {"threshold": 0.9, "early_stop": False}),
    ("LRD no mixing, t=0.9", LRD, {"threshold": 0.9, "mixing": False}),
    ("LRD no mix floor, t=0.9", LRD, {"threshold": 0.9, "mix_min_confidence": 0.0}),  # the default before stop 48
    ("LRD composed (sure, slack 2), t=0.9", LRD, {"threshold": 0.9, "refine_commit": "sure", "stable_slack": 2.0}),
    ("LRD no early stop, t=0.95", LRD, {"threshold": 0.95, "early_stop": False}),
]


def task_list(text: str | None, model: Path) -> list[str]:
    """The --tasks list, or the suite's tasks the model was trained on (all when it does not say)."""
    if text:
        return [t for t in text.split(",") if t]
    return learnt_tasks(tasks.TASKS, trained_tasks(model))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="held-out prompts per task")
    parser.add_argument("--model", default=str(DEFAULT_DIR), help="a model directory (default: the embedded one)")
    parser.add_argument("--tasks", default=None, help="comma list (default: the tasks the model was trained on)")
    parser.add_argument("--algorithms", default=None, help="row names to run, separated by ; (default: all)")
    parser.add_argument("--sync", action="store_true", help="the synchronous loop (default: FDFO, SGLang's default)")
    parser.add_argument(
        "--gen-lengths", default="64", help="comma list of answer lengths, multiples of 32: blocks = length / 32"
    )
    parser.add_argument(
        "--stop-at-eos",
        action="store_true",
        help="end a request after the block that holds its EOS, as SGLang does (default: decode every block)",
    )
    parser.add_argument(
        "--wall-runs", type=int, default=1, help="serve each task this many times, order alternated (wall ratios)"
    )
    parser.add_argument("--out", default="runs/sglang_loops.json")
    args = parser.parse_args()
    runs = RUNS
    if args.algorithms is not None:
        wanted = [name.strip() for name in args.algorithms.split(";") if name.strip()]
        unknown = [name for name in wanted if name not in {name for name, _, _ in RUNS}]
        if unknown or not wanted:
            raise SystemExit(f"--algorithms: unknown {unknown or 'empty list'}; allowed: {[r[0] for r in RUNS]}")
        runs = [run for run in RUNS if run[0] in wanted]
    if args.wall_runs < 1:
        raise SystemExit(f"--wall-runs must be >= 1, got {args.wall_runs}")
    lengths = [int(text) for text in args.gen_lengths.split(",") if text.strip()]
    if not lengths or any(length <= 0 or length % BLOCK for length in lengths):
        raise SystemExit(f"--gen-lengths must be positive multiples of {BLOCK}, got {args.gen_lengths!r}")
    net, tokenizer = LLaDAModel.from_pretrained(args.model).eval(), CharTokenizer.load(args.model)
    eos = tokenizer.eos_id if args.stop_at_eos else None
    rows = []
    for task in task_list(args.tasks, Path(args.model)):
        examples = tasks.generate_examples(task, "test", args.n)
        prompts = [tokenizer.encode(ex.prompt) for ex in examples]
        for length in lengths:
            found: dict[str, dict] = {}
            for run in range(args.wall_runs):
                for name, cls, settings in runs if run % 2 == 0 else runs[::-1]:
                    config = DllmConfig(cls.__name__, settings, BLOCK, tokenizer.mask_id, len(examples), not args.sync)
                    runner = TinyModelRunner(net, BLOCK)
                    requests = [Request(f"r{i}", p, length // BLOCK, eos=eos) for i, p in enumerate(prompts)]
                    start = time.perf_counter()
                    rounds = serve(cls(config), runner, requests)
                    seconds = time.perf_counter() - start
                    if name in found:  # a repeat for the wall time: the same decode again
                        found[name]["seconds_runs"].append(seconds)
                        continue
                    correct = sum(
                        tasks.score(task, ex.prompt, tokenizer.decode(r.output))
                        for ex, r in zip(examples, requests, strict=True)
                    )
                    nfe = sum(runner.forwards_of(r.rid) for r in requests) / len(requests)
                    row = {"task": task, "gen_length": length, "algorithm": name, "accuracy": correct / len(examples)}
                    found[name] = row | {"nfe": nfe, "rounds": rounds, "seconds_runs": [seconds]}
            for name, _, _ in runs:
                row = found[name] | {"seconds": statistics.median(found[name]["seconds_runs"])}
                rows.append(row)
                print(
                    f"{task:8s} {length:4d} {name:40s} acc {row['accuracy']:6.1%}  NFE/request {row['nfe']:6.2f}  "
                    f"rounds {row['rounds']}  {row['seconds']:6.2f} s",
                    flush=True,
                )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"n": args.n, "fdfo": not args.sync, "block": BLOCK, "stop_at_eos": args.stop_at_eos}
    out.write_text(json.dumps(meta | {"rows": rows}, indent=2))


if __name__ == "__main__":
    main()
