"""The plugin's cost with every LRD feature off, against each engine's own loop, in one process.

    FAST_DLLM_ROOT=../shared/upstream/fast-dllm/a9b81e4 PYTHONPATH=. .venv-tf4/bin/python \\
        benchmarks/overhead.py --engine fast-dllm [--runs 5] [--n 20] [--out DIR]
    LRD_REQUIRE_SGLANG=1 .venv-sglang/bin/python benchmarks/overhead.py --engine sglang [--runs 5] [--n 20]

`sampler="lrd"` with refinement, mixing and early stop off must decode what the engine decodes, in
the same forwards (the integration tests prove it token for token), and cost no more than 3 % wall
(issue 16). Each loop decodes the same held-out prompts (arith, list, Sudoku; gen 64, block 32)
engine-first then plugin-first in alternate prompts, `--runs` times; each run gives one wall ratio
(plugin / engine, summed over the prompts of every task) and the table reports the median run with the range.
Outputs and forwards are compared on every prompt, so a ratio never compares different work.

Loops: Fast-dLLM v1's LLaDA ``generate`` / ``generate_with_prefix_cache`` / ``generate_with_dual_cache``
(threshold 0.9, factor 1.0) over the embedded default in upstream's own ``LLaDAModelLM``; its Dream
block sampler (prefix and dual cache, ``confidence_threshold`` 0.9) over a Dream
model of the default's size with random weights (the project trains no Dream-architecture model:
the overhead is per step, not per answer); SGLang's dLLM loop, sync and FDFO (LowConfidence 0.9
against ``LRD`` with its features off), over the default behind the SGLang test harness's runner,
all prompts of a task in one batch.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # upstream's attention is torch.compile'd at import

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from lrd_plugin.loading import DEFAULT_DIR  # noqa: E402
from lrd_plugin.models import CharTokenizer  # noqa: E402
from lrd_plugin.tasks import generate_examples  # noqa: E402

TASKS = ("arith", "list", "sudoku")
GEN, BLOCK = 64, 32
OFF = {"refinement": False, "mixing": False, "early_stop": False}
Decode = Callable[[Any], tuple[Any, int]]  # one prompt (or batch) -> (output, forwards)


def measure(name: str, engine: Decode, plugin: Decode, prompts: list[Any], runs: int) -> dict[str, Any]:
    """Median over `runs` of the summed plugin / engine wall over `prompts`, order alternated."""
    ratios = []
    forwards = 0
    for run in range(runs):
        totals = {"engine": 0.0, "plugin": 0.0}
        for i, prompt in enumerate(prompts):
            order = (("engine", engine), ("plugin", plugin))
            outputs = {}
            for label, decode in order if (i + run) % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                outputs[label] = decode(prompt)
                totals[label] += time.perf_counter() - start
            (out_e, nfe_e), (out_p, nfe_p) = outputs["engine"], outputs["plugin"]
            if nfe_e != nfe_p or not _same(out_e, out_p):
                raise SystemExit(f"{name}: the plugin with LRD off decoded differently from the engine (prompt {i})")
            if run == 0:
                forwards += nfe_e
        ratios.append(totals["plugin"] / totals["engine"])
    ratios.sort()
    median = statistics.median(ratios)
    print(f"{name:52s} overhead {100 * (median - 1):+5.1f} %  [{ratios[0]:.3f}-{ratios[-1]:.3f}]", flush=True)
    return {"loop": name, "ratio_median": median, "ratios": ratios, "forwards": forwards, "prompts": len(prompts)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def _prompts(tokenizer: CharTokenizer, n: int) -> list[list[int]]:
    """`n` held-out prompts of each task, the tasks one after the other."""
    return [tokenizer.encode(e.prompt) for task in TASKS for e in generate_examples(task, "test", n, seed=0)]


# --- Fast-dLLM v1 ----------------------------------------------------------------------------------
def fast_dllm_loops(n: int, runs: int) -> list[dict[str, Any]]:
    from lrd_plugin.integrations.fast_dllm import dream as lrd_dream
    from lrd_plugin.integrations.fast_dllm import llada as lrd_llada
    from lrd_plugin.integrations.fast_dllm.layout import detect_layout, flat_imports

    layout = detect_layout()
    with flat_imports(layout.llada_dir):
        generate = importlib.import_module("generate")
        modeling = importlib.import_module("model.modeling_llada")
        configuration = importlib.import_module("model.configuration_llada")
    functions = ("generate", "generate_with_prefix_cache", "generate_with_dual_cache")
    originals = {name: getattr(generate, name) for name in functions}
    lrd_llada.install(generate)
    model = modeling.LLaDAModelLM.from_pretrained(
        DEFAULT_DIR, config=configuration.LLaDAConfig.from_pretrained(DEFAULT_DIR)
    ).eval()
    tokenizer = CharTokenizer.load(DEFAULT_DIR)
    prompts = [torch.tensor([ids]) for ids in _prompts(tokenizer, n)]
    lrd_off = {f"lrd_{k}": v for k, v in OFF.items()}
    records = []
    rules = {"threshold 0.9": {"threshold": 0.9}}
    if not layout.legacy:
        rules["factor 1.0"] = {"factor": 1.0}
    for function in functions:
        for rule, rule_args in rules.items():
            kwargs = {"steps": GEN, "gen_length": GEN, "block_length": BLOCK, "mask_id": tokenizer.mask_id, **rule_args}
            engine = _llada_call(originals[function], model, kwargs)
            plugin = _llada_call(getattr(generate, function), model, kwargs | {"sampler": "lrd"} | lrd_off)
            records.append(measure(f"Fast-dLLM LLaDA {function}, {rule}", engine, plugin, prompts, runs))

    with flat_imports(layout.dream_dir):
        package = importlib.import_module("model")
        block = importlib.import_module("model.generation_utils_block")
    upstream, switched = lrd_dream.switched_pairs(block)
    dream = _random_dream(package, tokenizer)
    for dual in (False, True):
        for alg in ("confidence_threshold",):  # (``entropy`` commits one token per forward whatever its threshold)
            kwargs = {"max_new_tokens": GEN, "steps": GEN, "block_length": BLOCK, "alg": alg, "threshold": 0.9}
            kwargs |= {"temperature": 0.0, "top_p": None, "top_k": None, "dual_cache": dual}
            engine = _dream_call(dream, upstream, kwargs)
            plugin = _dream_call(dream, switched, kwargs | {"sampler": "lrd"} | lrd_off)
            name = f"Fast-dLLM Dream {'dual' if dual else 'prefix'} cache, {alg} 0.9"
            records.append(measure(name, engine, plugin, prompts, runs))
    return records


def _llada_call(function: Callable[..., Any], model: Any, kwargs: dict[str, Any]) -> Decode:
    return lambda prompt: function(model, prompt, **kwargs)


def _random_dream(package: Any, tokenizer: CharTokenizer) -> Any:
    """Upstream's ``DreamModel`` at the embedded default's width and depth, random weights, a head
    scaled to be confident (a random one predicts almost uniformly) and the mask never predicted."""
    vocab = tokenizer.vocab_size
    mask, pad = vocab, vocab + 1
    config = package.DreamConfig(
        vocab_size=vocab + 2,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=8,
        mask_token_id=mask,
        pad_token_id=pad,
    )
    torch.manual_seed(0)
    model = package.DreamModel(config).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(90.0)  # 4-22 forwards for 64 tokens at threshold 0.9, as a trained model
    index = torch.tensor([mask])
    model.lm_head.register_forward_hook(lambda module, args, out: out.index_fill(-1, index, -1e4))
    forwards = [0]
    model.register_forward_pre_hook(lambda module, args: forwards.__setitem__(0, forwards[0] + 1))
    model.forwards = forwards
    return model


def _dream_call(model: Any, functions: tuple[Callable[..., Any], Callable[..., Any]], kwargs: dict[str, Any]) -> Decode:
    """``diffusion_generate`` and ``_sample`` bound as Fast-dLLM's ``eval.py`` binds them."""

    def decode(prompt: torch.Tensor) -> tuple[Any, int]:
        model.diffusion_generate = types.MethodType(functions[0], model)
        model._sample = types.MethodType(functions[1], model)
        model.forwards[0] = 0
        out = model.diffusion_generate(prompt, **kwargs)
        return out, model.forwards[0]

    return decode


# --- SGLang ------------------------------------------------------------------------------------------
def sglang_loops(n: int, runs: int) -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT / "integration_tests" / "sglang"))
    import conftest  # noqa: F401  # the documented torchvision import stand-in, before SGLang
    from harness import Request, TinyModelRunner, serve
    from sglang.srt.dllm.algorithm.low_confidence import LowConfidence
    from sglang.srt.dllm.config import DllmConfig

    from lrd_plugin.integrations.sglang.algorithm import LRD
    from lrd_plugin.models import LLaDAModel

    net, tokenizer = LLaDAModel.from_pretrained(DEFAULT_DIR).eval(), CharTokenizer.load(DEFAULT_DIR)
    prompts = _prompts(tokenizer, n)
    batches = [prompts[i * n : (i + 1) * n] for i in range(len(TASKS))]  # a task's prompts together
    records = []
    for fdfo in (False, True):

        def loop(cls: type, settings: dict[str, Any], fdfo: bool = fdfo) -> Decode:
            def decode(batch: list[list[int]]) -> tuple[Any, int]:
                config = DllmConfig(cls.__name__, settings, BLOCK, tokenizer.mask_id, len(batch), fdfo)
                runner = TinyModelRunner(net, BLOCK)
                requests = [Request(f"r{i}", p, GEN // BLOCK) for i, p in enumerate(batch)]
                serve(cls(config), runner, requests)
                return [r.output for r in requests], len(runner.forwards)

            return decode

        engine = loop(LowConfidence, {"threshold": 0.9})
        plugin = loop(LRD, {"threshold": 0.9} | OFF)
        name = f"SGLang {'FDFO' if fdfo else 'sync'} loop, LowConfidence 0.9 (a task's {n} prompts in one batch)"
        records.append(measure(name, engine, plugin, batches, runs))
    return records


def markdown(records: list[dict[str, Any]]) -> str:
    lines = ["| loop | overhead, median run | range of runs | engine forwards per run |", "|---|---:|---:|---:|"]
    for r in records:
        spread = f"{100 * (r['ratios'][0] - 1):+.1f} to {100 * (r['ratios'][-1] - 1):+.1f} %"
        lines.append(f"| {r['loop']} | {100 * (r['ratio_median'] - 1):+.1f} % | {spread} | {r['forwards']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", required=True, choices=("fast-dllm", "sglang"))
    parser.add_argument("--runs", type=int, default=5, help="runs over the prompts (the median is reported)")
    parser.add_argument("--n", type=int, default=20, help="held-out prompts per task")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="folder for overhead_<engine>.json / .md")
    args = parser.parse_args()
    if args.runs < 1 or args.n < 1:
        raise SystemExit(f"--runs and --n must be >= 1, got {args.runs} and {args.n}")
    torch.set_num_threads(args.threads)
    records = fast_dllm_loops(args.n, args.runs) if args.engine == "fast-dllm" else sglang_loops(args.n, args.runs)
    table = markdown(records)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"engine": args.engine, "runs": args.runs, "n": args.n, "gen_length": GEN, "block_length": BLOCK}
        if args.engine == "fast-dllm":
            meta["fast_dllm_root"] = os.environ.get("FAST_DLLM_ROOT")
        stem = f"overhead_{args.engine.replace('-', '_')}"
        (args.out / f"{stem}.json").write_text(json.dumps(meta | {"records": records}, indent=1) + "\n")
        (args.out / f"{stem}.md").write_text(table)


if __name__ == "__main__":
    main()
