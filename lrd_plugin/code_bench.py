"""The side-by-side benchmark on the code model: every sampler on the same held-out code problems.

The code counterpart of ``bench.run_benchmark`` (same ``Sampler`` list, same ``Record`` rows, so the
speed-up columns and reports are shared). A record's ``accuracy`` is the span's exact match; its
``scores`` add the parse rate, the token accuracy and, where doctests run, the pass rate. The
records' ``gen_length`` is the size bucket: a body's canvas, or an infill's longest span.

Two statistics tell how confident the model is, so that defaults are chosen on more than one model:
the top-1 confidence of every masked position in one forward over the fully masked canvas, and the
KL between successive predictions that LRD's refinement steps see.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from typing import Any

import torch

from . import code_tasks as ct
from .bench import Record, Sampler, Tally, _bar
from .loading import LoadedModel

QUICK_LIMITS = {"left_budget": 128, "right_budget": 32}  # short contexts: the smoke run stays fast
KL_STEPS = 4  # first steps of each block whose KL quantiles are reported


def code_examples(
    loaded: LoadedModel,
    tasks: Iterable[str],
    n: int,
    *,
    body_lengths: Iterable[int],
    max_span: int,
    seed: int = 0,
    offset: int = 0,
    **limits: Any,
) -> dict[tuple[str, int], list[ct.CodeExample]]:
    """Held-out examples per (task, size): each body length, and infills of at most ``max_span`` tokens
    (``n`` of them from the ``offset``-th on)."""
    plan = {}
    for task in tasks:
        if task == "body":
            for length in body_lengths:
                plan[task, length] = ct.generate_examples(
                    task, "test", n, loaded.tokenizer, seed, offset=offset, gen_length=length, **limits
                )
        else:
            plan[task, max_span] = ct.generate_examples(
                task, "test", n, loaded.tokenizer, seed, offset=offset, max_span=max_span, **limits
            )
    return plan


def run_code_sampler(
    loaded: LoadedModel,
    sampler: Sampler,
    examples: list[ct.CodeExample],
    *,
    task: str,
    size: int,
    block_length: int,
    batch_size: int,
    run_doctests: bool = False,
    kl: list[list[float]] | None = None,
) -> Record:
    """Decode and score every example with one sampler. ``kl`` (one list per step of a block, filled
    in place): the KL between successive predictions at each block's first ``KL_STEPS`` steps."""
    tok = loaded.tokenizer
    chunks = ct.decode_chunks(
        loaded.denoiser,
        examples,
        tok.mask_id,
        tok.pad_id,
        config=sampler.config,
        cache=sampler.cache,
        block_length=block_length,
        batch_size=batch_size,
        device=loaded.device,
        record_kl=kl is not None,
    )
    scores, tally = [], Tally()
    for members, out, seconds in chunks:
        for i, row in zip(members, out.generated.tolist(), strict=True):
            scores.append(ct.score(examples[i], row, tok, run_doctests=run_doctests))
        tally.add(out, seconds, tokens=sum(examples[i].n_tokens for i in members))
        if kl is not None and out.kl_trace is not None:
            for block in out.kl_trace:
                for step, values in enumerate(block[:KL_STEPS]):
                    kl[step] += [v for v in values.tolist() if v == v and v != float("inf")]
    summary = ct.summarize(scores)
    return tally.record(
        sampler,
        accuracy=summary["exact"],
        task=task,
        gen_length=size,
        block_length=block_length,
        scores={k: summary[k] for k in ("parses", "edit_similarity", "token_accuracy", "runs", "n_runs")},
    )


def trivial_scores(loaded: LoadedModel, examples: list[ct.CodeExample]) -> dict[str, dict[str, Any]]:
    """The two fillers a model must beat: the most frequent training token, and a copy of the lines
    just above the span (``pass`` for a body)."""
    tok = loaded.tokenizer
    frequent = tok.encode("\n", add_bos=False)[0]
    fills = [ct.trivial_fill(e, frequent, tok.eos_id) for e in examples]
    copies = []
    for e in examples:
        text = ct.copy_fill(e)
        ids = [*tok.encode(text, add_bos=False), tok.eos_id]  # the copy at the span's first position
        copies.append(ct.score_text(e, text) | {"token_accuracy": ct.token_accuracy(e, ids, tok.eos_id)})
    return {
        "most frequent token": ct.summarize([ct.score(e, f, tok) for e, f in zip(examples, fills, strict=True)]),
        "copy the line above": ct.summarize(copies),
    }


@torch.no_grad()
def confidence_statistics(loaded: LoadedModel, examples: list[ct.CodeExample]) -> dict[str, float]:
    """Top-1 probability at every masked position of one forward over each fully masked canvas."""
    tok, values = loaded.tokenizer, []
    for e in examples:
        ids = torch.tensor([list(e.prompt_ids) + e.canvas(tok.mask_id)], device=loaded.device)
        logits, _ = loaded.denoiser.forward(loaded.denoiser.embedding_table()[ids])
        probs = logits.float().softmax(-1)[0]
        masked = ids[0] == tok.mask_id
        values += probs[masked].max(-1).values.tolist()
    values.sort()
    return {
        "positions": len(values),
        "median": statistics.median(values),
        "p10": values[len(values) // 10],
        "p90": values[(9 * len(values)) // 10],
        "share_above_0.9": sum(v > 0.9 for v in values) / len(values),
        "share_above_0.99": sum(v > 0.99 for v in values) / len(values),
        "share_above_0.999": sum(v > 0.999 for v in values) / len(values),
    }


def kl_quantiles(kl: list[list[float]]) -> list[dict[str, float]]:
    """10/50/90 % quantiles of the KL at each step of a block (steps with no value are left out)."""
    out = []
    for step, values in enumerate(kl, start=1):
        if values:
            values = sorted(values)
            out.append(
                {
                    "step": step,
                    "n": len(values),
                    "p10": values[len(values) // 10],
                    "p50": statistics.median(values),
                    "p90": values[(9 * len(values)) // 10],
                }
            )
    return out


def run_code_benchmark(
    loaded: LoadedModel,
    samplers: list[Sampler],
    *,
    tasks: Iterable[str],
    n: int,
    body_lengths: Iterable[int],
    max_span: int,
    block_length: int,
    batch_size: int,
    seed: int = 0,
    offset: int = 0,
    run_doctests: bool = False,
    progress: bool = True,
    kl_sampler: str = "lrd",
    **limits: Any,
) -> tuple[list[Record], dict[str, Any]]:
    """Every sampler on the same held-out examples of every task and size. Returns the records and the
    statistics: trivial baselines and confidence per (task, size), the KL quantiles of ``kl_sampler``."""
    if not hasattr(loaded.tokenizer, "mask_id") or not hasattr(loaded.tokenizer, "bos_id"):
        raise ValueError("the code benchmark needs a model with the project's BPE tokenizer (e.g. --model code)")
    plan = code_examples(
        loaded, tasks, n, body_lengths=body_lengths, max_span=max_span, seed=seed, offset=offset, **limits
    )
    if any(not examples for examples in plan.values()):
        empty = [f"{t}/{s}" for (t, s), examples in plan.items() if not examples]
        raise ValueError(f"no held-out examples fit the limits for {empty}")
    stats: dict[str, Any] = {"trivial": {}, "confidence": {}, "kl": []}
    for (task, size), examples in plan.items():
        stats["trivial"][f"{task}/{size}"] = trivial_scores(loaded, examples)
        stats["confidence"][f"{task}/{size}"] = confidence_statistics(loaded, examples)
    kl: list[list[float]] = [[] for _ in range(KL_STEPS)]
    records = []
    runs = [(key, s) for key in plan for s in samplers]
    for (task, size), sampler in _bar(runs, progress):
        records.append(
            run_code_sampler(
                loaded,
                sampler,
                plan[task, size],
                task=task,
                size=size,
                block_length=block_length,
                batch_size=batch_size,
                run_doctests=run_doctests,
                kl=kl if sampler.name == kl_sampler else None,
            )
        )
    stats["kl"] = kl_quantiles(kl)
    return records, stats


def code_table(rows: list[dict[str, Any]]) -> str:
    """One line per task x size x sampler: the scores, forwards and speed-ups against LLaDA's baseline."""
    head = (
        "| task | size | sampler | exact % | parses % | edit sim % | token acc % | NFE | latency s | "
        "NFE x vs LLaDA | time x vs LLaDA | time x vs Fast-dLLM |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['task']} | {r['gen_length']} | {r['sampler']} | {100 * r['accuracy']:.1f} | "
        f"{100 * r['scores']['parses']:.1f} | {100 * r['scores']['edit_similarity']:.1f} | "
        f"{100 * r['scores']['token_accuracy']:.1f} | {r['mean_nfe']:.1f} | "
        f"{r['latency_s']:.3f} | {r.get('nfe_speedup_vs_llada', float('nan')):.2f} | "
        f"{r.get('time_speedup_vs_llada', float('nan')):.2f} | "
        f"{r.get('time_speedup_vs_fast-dllm-threshold', float('nan')):.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def statistics_text(stats: dict[str, Any]) -> str:
    """The trivial baselines, the confidence and the KL statistics as Markdown."""
    lines = [
        "| task | size | filler | exact % | parses % | edit sim % | token acc % |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for key, fillers in stats["trivial"].items():
        task, size = key.split("/")
        for name, s in fillers.items():
            lines.append(
                f"| {task} | {size} | {name} | {100 * s['exact']:.1f} | {100 * s['parses']:.1f} | "
                f"{100 * s['edit_similarity']:.1f} | {100 * s['token_accuracy']:.1f} |"
            )
    lines += ["", "| task | size | masked positions | median top-1 | p10 | p90 | > 0.9 | > 0.99 | > 0.999 |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, c in stats["confidence"].items():
        task, size = key.split("/")
        lines.append(
            f"| {task} | {size} | {c['positions']} | {c['median']:.3f} | {c['p10']:.3f} | {c['p90']:.3f} | "
            f"{100 * c['share_above_0.9']:.0f} % | {100 * c['share_above_0.99']:.0f} % | "
            f"{100 * c['share_above_0.999']:.0f} % |"
        )
    if stats["kl"]:
        lines += ["", kl_text(stats["kl"])]
    return "\n".join(lines) + "\n"


def kl_text(kl: list[dict[str, float]]) -> str:
    """The KL quantiles at each step of a block as a Markdown table."""
    lines = ["| step of a block | blocks | KL p10 | KL p50 | KL p90 |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {q['step']} | {q['n']} | {q['p10']:.2e} | {q['p50']:.2e} | {q['p90']:.2e} |" for q in kl]
    return "\n".join(lines)
