"""Upstream Fast-dLLM against upstream Fast-dLLM + LRD, same model, same process, same prompts.

    FAST_DLLM_ROOT=/path/to/Fast-dLLM .venv-tf4/bin/python benchmarks/fast_dllm_composed.py \\
        [--tasks arith,list,sudoku] [--gen-lengths 64,128,256] [--n 20] [--out benchmarks/results/fast_dllm]

The embedded default is loaded into upstream's own ``LLaDAModelLM``; every prompt is decoded with
upstream's ``generate_with_prefix_cache`` / ``generate_with_dual_cache`` (``--caches none`` adds
``generate``, the loop without a cache) under threshold 0.9 and factor 1.0 (``--rules``: any list of
thresholds and factors), block 32, batch 1 as in Fast-dLLM's evaluation scripts, five ways: upstream itself
(``sampler`` absent), the plugin with LRD's features off (its overhead: should be within noise),
LRD with the paper's early stop, LRD with the package's default early stop (``per_position``; over
the block on the dual cache, which predicts only the block), and LRD without early stop.
A Dream-format ``--model`` (``model_type: Dream``, e.g. ``dream1``) runs upstream's Dream block sampler
instead (prefix and dual cache, the threshold rule). Settings are interleaved per prompt so that
machine noise falls on all of them alike. Writes
``results.json`` and ``results.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # upstream's attention is torch.compile'd at import

import torch
from torch import Tensor

from lrd_plugin.integrations.fast_dllm import dream, llada
from lrd_plugin.integrations.fast_dllm.layout import Layout, detect_layout, flat_imports
from lrd_plugin.loading import learnt_tasks, trained_tasks
from lrd_plugin.models import CharTokenizer
from lrd_plugin.tasks import TASKS, generate_examples, score

MODEL_DIR = Path(__file__).resolve().parents[1] / "lrd_plugin" / "default_model"
DEFAULT_RULES = ("threshold 0.9", "factor 1.0")  # parsed by _rule, as any --rules entry
CACHES = {"none": "generate", "prefix": "generate_with_prefix_cache", "dual": "generate_with_dual_cache"}
DEFAULT_CACHES = ("prefix", "dual")  # the no-cache loop on request: a full forward per step
VARIANTS = {
    "fast-dllm": {},
    "plugin (LRD off)": {"sampler": "lrd", "lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False},
    "fast-dllm + lrd (paper stop)": {"sampler": "lrd", "lrd_early_stop_rule": "paper", "lrd_early_stop_scope": "block"},
    "fast-dllm + lrd": {"sampler": "lrd"},  # the package default early stop
    # the default before stop 37: the 0.999 gate after the block too, not the engine's bar
    "fast-dllm + lrd (later gate 0.999)": {"sampler": "lrd", "lrd_later_gate": "early_stop"},
    "fast-dllm + lrd (no early stop)": {"sampler": "lrd", "lrd_early_stop": False},
    # the sequence stop commits later positions only on the forward that finishes the block
    "fast-dllm + lrd (later at block end)": {"sampler": "lrd", "lrd_later_commit": "block_end"},
    # the sequence stop commits later positions on any step (the default before stop 40)
    "fast-dllm + lrd (later every step)": {"sampler": "lrd", "lrd_later_commit": "every_step"},
    "fast-dllm + lrd (no mixing)": {"sampler": "lrd", "lrd_mixing": False},  # the default's stop alone
    # every open position mixed as in Eq. 3, no floor (the default before stop 48; benchmarks/mix_floor.py)
    "fast-dllm + lrd (no mix floor)": {"sampler": "lrd", "lrd_mix_min_confidence": 0.0},
    # the composed mode: the default, and stable positions commit at twice the error the threshold accepts
    "fast-dllm + lrd (composed)": {"sampler": "lrd", "lrd_stable_slack": 2.0},
    # Phase 1 commits only what the threshold is sure of (the default in stop 23)
    "fast-dllm + lrd (phase 1 commits the sure only)": {"sampler": "lrd", "lrd_refine_commit": "sure"},
    # Phase 1 commits nothing, as in the paper (the default before refine_commit=auto)
    "fast-dllm + lrd (phase 1 commits nothing)": {"sampler": "lrd", "lrd_refine_commit": "none"},
}
DEFAULT_VARIANTS = ("fast-dllm", "plugin (LRD off)", "fast-dllm + lrd (paper stop)", "fast-dllm + lrd",
                    "fast-dllm + lrd (no early stop)")  # fmt: skip


def answer(tokenizer: CharTokenizer, ids: list[int]) -> str:
    if tokenizer.eos_id in ids:
        ids = ids[: ids.index(tokenizer.eos_id)]
    return tokenizer.decode(ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=None, help="comma list (default: the tasks the model was trained on)")
    parser.add_argument("--gen-lengths", default="64,128,256")
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--n", type=int, default=20, help="held-out prompts per task")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/fast_dllm"))
    parser.add_argument("--model", type=Path, default=MODEL_DIR, help="a LLaDA-format model directory")
    parser.add_argument("--caches", default=",".join(DEFAULT_CACHES), help=f"comma list of {list(CACHES)}")
    parser.add_argument(
        "--rules",
        default=",".join(DEFAULT_RULES),
        help="comma list of 'threshold T' / 'factor F' (a sweep: several of each)",
    )
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma list of {list(VARIANTS)} (fast-dllm first)"
    )
    args = parser.parse_args()
    variants = {name: VARIANTS[name] for name in _names(args.variants, VARIANTS, "--variants")}
    if "fast-dllm" not in variants:
        raise SystemExit("--variants must include fast-dllm (every other variant is measured against it)")
    caches = {name: CACHES[name] for name in _names(args.caches, CACHES, "--caches")}
    chosen_rules = {name.strip(): _rule(name) for name in args.rules.split(",") if name.strip()}
    torch.set_num_threads(args.threads)

    layout = detect_layout()
    is_dream = json.loads((args.model / "config.json").read_text()).get("model_type") == "Dream"
    decode = dream_decoder(layout, args.model) if is_dream else llada_decoder(layout, args.model)
    if is_dream and ("none" in caches or any("factor" in rule for rule in chosen_rules.values())):
        raise SystemExit(
            "Fast-dLLM's Dream loops have a prefix and a dual cache and the threshold rule only: "
            "pass --caches prefix,dual --rules 'threshold T'"
        )
    tokenizer = CharTokenizer.load(args.model)

    rules = {k: v for k, v in chosen_rules.items() if not (layout.legacy and "factor" in v)}
    records: list[dict[str, Any]] = []
    chosen_tasks = args.tasks.split(",") if args.tasks else learnt_tasks(TASKS, trained_tasks(args.model))
    for task in chosen_tasks:
        examples = generate_examples(task, "test", args.n, seed=0)
        for gen_length in map(int, args.gen_lengths.split(",")):
            totals: dict[tuple[str, str, str], dict[str, float]] = {}
            for example in examples:
                prompt = torch.tensor([tokenizer.encode(example.prompt)])
                for cache in caches:
                    for rule, rule_args in rules.items():
                        for variant, variant_args in variants.items():
                            lengths = {"gen_length": gen_length, "block_length": args.block_length}
                            start = time.perf_counter()
                            x, nfe = decode(cache, prompt, tokenizer.mask_id, lengths, rule_args | variant_args)
                            seconds = time.perf_counter() - start
                            text = answer(tokenizer, x[0, prompt.shape[1] :].tolist())
                            slot = totals.setdefault((cache, rule, variant), {"correct": 0, "nfe": 0, "seconds": 0.0})
                            slot["correct"] += score(task, example.prompt, text)
                            slot["nfe"] += nfe
                            slot["seconds"] += seconds
            for (cache, rule, variant), slot in totals.items():
                records.append(
                    {
                        "task": task,
                        "gen_length": gen_length,
                        "cache": cache,
                        "rule": rule,
                        "variant": variant,
                        "n": len(examples),
                        "accuracy": slot["correct"] / len(examples),
                        "nfe": slot["nfe"] / len(examples),
                        "latency_s": slot["seconds"] / len(examples),
                        "tokens_per_s": gen_length * len(examples) / slot["seconds"],
                    }
                )
            print(f"done: {task} gen {gen_length}", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"layout": layout.name, "root": str(layout.root), "n": args.n, "block_length": args.block_length}
    meta |= {"model": str(args.model), "variants": variants}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
    table = markdown(records)
    (args.out / "results.md").write_text(table)
    print(table)


Decode = Callable[[str, Tensor, int, dict[str, int], dict[str, Any]], tuple[Tensor, int]]


def llada_decoder(layout: Layout, model_dir: Path) -> Decode:
    """``decode(cache, prompt, mask_id, lengths, arguments) -> (x, forwards)`` through upstream's
    LLaDA ``generate*`` functions: its originals without ``sampler``, switched ones with it."""
    with flat_imports(layout.llada_dir):
        upstream = importlib.import_module("generate")
        modeling = importlib.import_module("model.modeling_llada")
        configuration = importlib.import_module("model.configuration_llada")
    original = {name: getattr(upstream, name) for name in CACHES.values()}
    llada.install(upstream)
    config = configuration.LLaDAConfig.from_pretrained(model_dir)
    model = modeling.LLaDAModelLM.from_pretrained(model_dir, config=config).eval()

    def decode(cache: str, prompt: Tensor, mask_id: int, lengths: dict[str, int], arguments: dict[str, Any]):
        function = CACHES[cache]
        call = getattr(upstream, function) if "sampler" in arguments else original[function]
        return call(model, prompt, mask_id=mask_id, steps=lengths["gen_length"], **lengths, **arguments)

    return decode


def dream_decoder(layout: Layout, model_dir: Path) -> Decode:
    """The same through upstream's Dream block sampler (``diffusion_generate`` / ``_sample`` of
    ``generation_utils_block``, bound to the model as Fast-dLLM's ``eval.py`` binds them) on a model
    saved in Dream's format (`lrd_plugin.models.dream_format`): the prefix cache is
    ``dual_cache=False``, the dual cache ``dual_cache=True``, the rule ``confidence_threshold``.
    Forwards are counted at the model (Dream returns none)."""
    with flat_imports(layout.dream_dir):
        package = importlib.import_module("model")
        block = importlib.import_module("model.generation_utils_block")
    original, switched = dream.switched_pairs(block)
    model = package.DreamModel.from_pretrained(model_dir).eval()
    forwards = [0]
    model.register_forward_pre_hook(lambda module, args: forwards.__setitem__(0, forwards[0] + 1))

    def decode(cache: str, prompt: Tensor, mask_id: int, lengths: dict[str, int], arguments: dict[str, Any]):
        arguments = dict(arguments)
        functions = switched if "sampler" in arguments else original
        model.diffusion_generate = types.MethodType(functions[0], model)
        model._sample = types.MethodType(functions[1], model)
        forwards[0] = 0
        x = model.diffusion_generate(
            prompt,
            max_new_tokens=lengths["gen_length"],
            steps=lengths["gen_length"],
            block_length=lengths["block_length"],
            alg="confidence_threshold",
            threshold=arguments.pop("threshold"),
            temperature=0.0,
            top_p=None,
            top_k=None,
            dual_cache=cache == "dual",
            **arguments,
        )
        return x, forwards[0]

    return decode


def _rule(name: str) -> dict[str, float]:
    """'threshold 0.9' -> {"threshold": 0.9}; the values are checked by upstream's own functions' wrapper."""
    words = name.split()
    try:
        if len(words) == 2 and words[0] in ("threshold", "factor"):
            return {words[0]: float(words[1])}
    except ValueError:
        pass
    raise SystemExit(f"--rules: {name.strip()!r} is not 'threshold T' or 'factor F' (e.g. 'threshold 0.9,factor 1.0')")


def _names(text: str, allowed: dict[str, Any], flag: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise SystemExit(f"{flag}: unknown {unknown or 'empty list'}; allowed: {list(allowed)}")
    return names


def markdown(records: list[dict[str, Any]]) -> str:
    """One row per task x length x cache x rule: upstream, then each other variant's accuracy change,
    NFE and latency speedup against it (same run); the plugin with LRD off is its overhead."""
    by_key: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in records:
        by_key.setdefault((r["task"], r["gen_length"], r["cache"], r["rule"]), {})[r["variant"]] = r
    others = [name for name in dict.fromkeys(r["variant"] for r in records) if name != "fast-dllm"]
    lines = [
        "| task | gen | cache | rule | Fast-dLLM acc, NFE | "
        + " | ".join(f"{name}: Δ acc, NFE, speedup" for name in others)
        + " |",
        "|---|---:|---|---|---:|" + "---:|" * len(others),
    ]
    for (task, gen, cache, rule), v in by_key.items():
        base = v["fast-dllm"]
        cells = [
            f"{100 * (r['accuracy'] - base['accuracy']):+.1f}, {r['nfe']:.1f}, "
            f"{base['latency_s'] / r['latency_s']:.2f}x"
            for r in (v[name] for name in others)
        ]
        lines.append(
            f"| {task} | {gen} | {cache} | {rule} | {100 * base['accuracy']:.1f}, {base['nfe']:.1f} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
