"""Upstream Fast-dLLM v2 against Fast-dLLM v2 + LRD: same model, same process, same prompts.

    FAST_DLLM_ROOT=/path/to/Fast-dLLM .venv-tf4/bin/python benchmarks/fast_dllm_v2_composed.py \\
        [--model DIR] [--tasks arith,list,sudoku] [--gen-lengths 64,128,256] [--n 200] [--batch-size 8] \\
        [--use-block-cache] [--small-block-size 8] [--threshold 0.9] [--variants "fast-dllm v2;..."] \\
        [--out benchmarks/results/fast_dllm_v2]

A model in this project's LLaDA format (default: the embedded one; for meaningful accuracy, one trained
with block-diffusion attention) is wrapped in `V2BlockModel`, which speaks v2's forward protocol, and
decoded by upstream's own ``batch_sample`` (``v2/generation_functions.py``) as v2's ``eval.py`` calls
it: prompts sorted by length, right-padded with the mask id, batches of ``--batch-size``, the model's
EOS as ``stop_token``. The variants: upstream itself (``sampler`` absent), the plugin with LRD's
features off (its overhead), LRD with the package defaults (early stop over the sub-block: v2 predicts
only the current block; Phase 1 commits what v2's threshold commits), LRD without early stop, LRD
without the mixture floor (every open position mixed), the composed mode with ``stable_slack`` 2, LRD
whose Phase 1 commits only what reaches the threshold, and LRD whose Phase 1 commits nothing (the paper). Variants
are interleaved per batch so that machine noise falls on all alike. Answers are scored up to their
first EOS. Forwards are counted per request (a forward over a batch of b requests counts b). Writes
``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")

import torch

from lrd_plugin.integrations.fast_dllm import enable_v2
from lrd_plugin.integrations.fast_dllm.v2_model import V2BlockModel
from lrd_plugin.models import CharTokenizer, LLaDAModel
from lrd_plugin.tasks import TASKS, generate_examples, score

MODEL_DIR = Path(__file__).resolve().parents[1] / "lrd_plugin" / "default_model"
OFF = {"lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "fast-dllm v2": {},
    "plugin, LRD off": {"sampler": "lrd", **OFF},
    "fast-dllm v2 + lrd": {"sampler": "lrd"},
    "fast-dllm v2 + lrd, no early stop": {"sampler": "lrd", "lrd_early_stop": False},
    # every open position mixed as in Eq. 3 (the default before stop 48)
    "fast-dllm v2 + lrd, no mix floor": {"sampler": "lrd", "lrd_mix_min_confidence": 0.0},
    "fast-dllm v2 + lrd (composed)": {"sampler": "lrd", "lrd_stable_slack": 2.0},
    "fast-dllm v2 + lrd (phase 1 commits the sure only)": {"sampler": "lrd", "lrd_refine_commit": "sure"},
    "fast-dllm v2 + lrd (phase 1 commits nothing)": {"sampler": "lrd", "lrd_refine_commit": "none"},
}

COMPARED = [name for name in VARIANTS if name.startswith("fast-dllm v2 + lrd")]


class Counter:
    """Counts forwards per request: upstream calls ``model.forward`` directly, so this wraps it."""

    def __init__(self, model: V2BlockModel) -> None:
        self.forwards = 0
        inner = model.forward

        def forward(**kwargs: Any) -> Any:
            ids = kwargs.get("input_ids")
            self.forwards += 1 if ids is None else ids.shape[0]
            return inner(**kwargs)

        model.forward = forward  # type: ignore[method-assign]


def answer(tokenizer: CharTokenizer, ids: list[int]) -> str:
    if tokenizer.eos_id in ids:
        ids = ids[: ids.index(tokenizer.eos_id)]
    return tokenizer.decode(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL_DIR)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--gen-lengths", default="64,128,256")
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--small-block-size", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--use-block-cache", action="store_true")
    parser.add_argument("--n", type=int, default=20, help="held-out prompts per task")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fast_dllm_v2"))
    parser.add_argument(
        "--variants", default=";".join(VARIANTS), help=f"';'-separated list of {list(VARIANTS)} (fast-dllm v2 first)"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.variants.split(";") if name.strip()]
    unknown = [name for name in chosen if name not in VARIANTS]
    if unknown or "fast-dllm v2" not in chosen:
        raise SystemExit(f"--variants must name fast-dllm v2 and only these: {list(VARIANTS)}; got {chosen}")
    variants = {name: VARIANTS[name] for name in chosen}
    torch.set_num_threads(args.threads)

    functions = enable_v2()
    switched = functions.Fast_dLLM_QwenForCausalLM.batch_sample
    original = switched.__wrapped__
    tokenizer = CharTokenizer.load(args.model)
    model = V2BlockModel(LLaDAModel.from_pretrained(args.model).to(args.device).eval(), block_size=args.block_size)
    counter = Counter(model)
    pad = SimpleNamespace(pad_token_id=tokenizer.pad_id)
    common = {
        "block_size": args.block_size,
        "small_block_size": args.small_block_size,
        "mask_id": tokenizer.mask_id,
        "threshold": args.threshold,
        "stop_token": tokenizer.eos_id,
        "use_block_cache": args.use_block_cache,
    }

    records: list[dict[str, Any]] = []
    for task in args.tasks.split(","):
        examples = sorted(generate_examples(task, "test", args.n, seed=0), key=lambda e: len(e.prompt))
        for gen_length in map(int, args.gen_lengths.split(",")):
            totals = {name: {"correct": 0, "forwards": 0, "seconds": 0.0} for name in variants}
            for first in range(0, len(examples), args.batch_size):
                batch = examples[first : first + args.batch_size]
                encoded = [tokenizer.encode(e.prompt) for e in batch]
                lengths = [len(ids) for ids in encoded]
                ids = torch.full((len(batch), max(lengths)), tokenizer.mask_id, device=args.device)
                for row, tokens in enumerate(encoded):
                    ids[row, : len(tokens)] = torch.tensor(tokens)
                seq_len = torch.tensor(lengths, device=args.device)
                for name, extra in variants.items():
                    function = original if not extra else switched
                    counter.forwards = 0
                    start = time.perf_counter()
                    out = function(
                        model, ids.clone(), pad, max_new_tokens=gen_length, min_len=min(lengths), seq_len=seq_len,
                        **common, **extra,
                    )  # fmt: skip
                    totals[name]["seconds"] += time.perf_counter() - start
                    totals[name]["forwards"] += counter.forwards
                    for row, example in enumerate(batch):
                        text = answer(tokenizer, out[row][lengths[row] :].tolist())
                        totals[name]["correct"] += score(task, example.prompt, text)
            for name, slot in totals.items():
                records.append(
                    {
                        "task": task,
                        "gen_length": gen_length,
                        "variant": name,
                        "n": len(examples),
                        "accuracy": slot["correct"] / len(examples),
                        "forwards": slot["forwards"] / len(examples),
                        "wall_s": slot["seconds"],
                    }
                )
            print(f"done: {task} gen {gen_length}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {key: str(value) for key, value in vars(args).items()}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    table = markdown(records)
    (args.out / "results.md").write_text(table)
    print(table)


def markdown(records: list[dict[str, Any]]) -> str:
    """One row per task x length: upstream's accuracy and forwards, then each LRD variant's accuracy
    change, forwards and wall-time speedup against it, and the plugin's overhead with LRD off."""
    by_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault((r["task"], r["gen_length"]), {})[r["variant"]] = r
    compared = " | ".join(f"{name}: Δ acc, forwards, speedup" for name in COMPARED)  # one column each
    lines = [
        f"| task | gen | Fast-dLLM v2 acc, forwards | {compared} | plugin overhead, LRD off |",
        "|---|---:|---:|" + "---:|" * (len(COMPARED) + 1),
    ]
    for (task, gen), v in by_key.items():
        base, off = v["fast-dllm v2"], v.get("plugin, LRD off")
        cells = [
            f"{100 * (v[name]['accuracy'] - base['accuracy']):+.1f}, {v[name]['forwards']:.1f}, "
            f"{base['wall_s'] / v[name]['wall_s']:.2f}x"
            if name in v
            else "–"
            for name in COMPARED
        ]
        overhead = "–" if off is None else f"{100 * (off['wall_s'] / base['wall_s'] - 1):+.1f} %"
        lines.append(
            f"| {task} | {gen} | {100 * base['accuracy']:.1f}, {base['forwards']:.1f} | "
            + " | ".join(cells)
            + f" | {overhead} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
