"""Side-by-side benchmark: LLaDA baseline, Fast-dLLM-style decoding, LRD and LRD composed with it.

Every sampler decodes the same held-out prompts with the same model in one process, so accuracy,
NFE and speed ratios are comparable. Results are records (one per task x length x sampler) that
`report` turns into JSON, a Markdown table and accuracy-vs-NFE plots.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import LRDConfig
from .decoder import GenerationOutput, generate
from .loading import LoadedModel

BASELINE_FAMILIES = ("fast-dllm-threshold", "fast-dllm-factor")


@dataclass(frozen=True)
class Sampler:
    """One decoding setting: a config and a cache mode. Samplers of one `family` differ in one knob
    (a threshold, a gate): the Pareto plots draw each family as one accuracy-vs-NFE curve."""

    name: str
    config: LRDConfig
    cache: str
    family: str = ""

    def __post_init__(self) -> None:
        if not self.family:
            object.__setattr__(self, "family", self.name)


def standard_samplers(lrd: LRDConfig | None = None) -> list[Sampler]:
    """The baselines the paper and Fast-dLLM report, and LRD alone and composed with Fast-dLLM."""
    lrd = lrd or LRDConfig()
    return [
        Sampler("llada", LRDConfig.base(policy="low_confidence"), "none"),
        Sampler("fast-dllm-threshold", LRDConfig.base(policy="threshold", threshold=0.9), "prefix"),
        Sampler("fast-dllm-factor", LRDConfig.base(policy="factor", factor=1.0), "prefix"),
        Sampler("lrd", lrd, "none"),
        Sampler("lrd (paper stop)", lrd.replace(early_stop_rule="paper", early_stop_scope="block"), "none"),
        Sampler("lrd+fast-dllm-threshold", lrd.replace(policy="threshold", threshold=0.9), "prefix"),
        Sampler("lrd+fast-dllm-factor", lrd.replace(policy="factor", factor=1.0), "prefix"),
    ]


def ablation_samplers(lrd: LRDConfig | None = None) -> list[Sampler]:
    """The paper's Table 3-4 ablations of LRD."""
    lrd = lrd or LRDConfig()
    return [
        Sampler("lrd w/o refinement", lrd.replace(refinement=False), "none"),
        Sampler("lrd w/o mixing", lrd.replace(mixing=False), "none"),
        Sampler("lrd w/o early stop", lrd.replace(early_stop=False), "none"),
    ]


def code_samplers(lrd: LRDConfig | None = None) -> list[Sampler]:
    """The code model's side-by-side set: the standard samplers, LRD with the paper's settings, without
    early stop and without mixing, LRD on Fast-dLLM's threshold 0.9 with a Phase 1 that commits
    nothing (the paper's) or only what the threshold is sure of (the earlier defaults), and the
    composed mode."""
    lrd = lrd or LRDConfig()
    on_t = lrd.replace(policy="threshold", threshold=0.9)
    return [
        *standard_samplers(lrd),
        *[
            Sampler(f"lrd+fast-dllm-threshold (phase 1 commits {what})", on_t.replace(refine_commit=rc), "prefix")
            for what, rc in (("nothing", "none"), ("the sure only", "sure"))
        ],
        Sampler("lrd (paper)", LRDConfig.paper(), "none"),
        *[s for s in ablation_samplers(lrd) if s.name != "lrd w/o refinement"],
        *composed_samplers([0.9], 2.0, lrd),
    ]


def sweep_samplers(field: str, values: Iterable[float], lrd: LRDConfig | None = None) -> list[Sampler]:
    """LRD with one field swept (the paper's Figs. 4-5 sweep r_f and top_p)."""
    lrd = lrd or LRDConfig()
    return [Sampler(f"lrd {field}={v:g}", lrd.replace(**{field: v}), "none", f"lrd {field} sweep") for v in values]


def gated_samplers(rule: str, confidences: Iterable[float], lrd: LRDConfig | None = None) -> list[Sampler]:
    """LRD with a gated early stop (``kl_gated`` or ``per_position``) at these confidence gates,
    alone and composed with Fast-dLLM's threshold rule."""
    lrd = lrd or LRDConfig()
    samplers = []
    for c in confidences:
        gated = lrd.replace(early_stop_rule=rule, early_stop_confidence=c)
        composed = gated.replace(policy="threshold", threshold=0.9)
        samplers.append(Sampler(f"lrd {rule} c={c:g}", gated, "none", f"lrd {rule}"))
        samplers.append(Sampler(f"lrd {rule} c={c:g}+fast-dllm-threshold", composed, "prefix", f"lrd {rule}+fast-dllm"))
    return samplers


def kl_gated_samplers(confidences: Iterable[float], lrd: LRDConfig | None = None) -> list[Sampler]:
    return gated_samplers("kl_gated", confidences, lrd)


def composed_samplers(thresholds: Iterable[float], slack: float, lrd: LRDConfig | None = None) -> list[Sampler]:
    """LRD's composed mode on Fast-dLLM's threshold rule at these thresholds (the default, plus
    stable positions committing at `slack` times the error the threshold accepts): its
    accuracy-vs-NFE curve, to set beside the threshold rule's own (`baseline_sweeps`)."""
    lrd = (lrd or LRDConfig()).replace(stable_slack=slack, policy="threshold")
    return [
        Sampler(
            f"lrd composed s={slack:g}+fast-dllm-threshold t={t:g}",
            lrd.replace(threshold=t),
            "prefix",
            f"lrd composed s={slack:g}+fast-dllm-threshold",
        )
        for t in thresholds
    ]


def baseline_sweeps(thresholds: Iterable[float] = (), factors: Iterable[float] = ()) -> list[Sampler]:
    """Fast-dLLM's threshold and factor rules at several settings: the baselines' own
    accuracy-vs-NFE curves, to compare a strategy with them at equal accuracy."""
    rules = [("threshold", t) for t in thresholds] + [("factor", f) for f in factors]
    return [
        Sampler(
            f"fast-dllm-{rule} {rule[0]}={v:g}",
            LRDConfig.base(policy=rule, **{rule: v}),
            "prefix",
            f"fast-dllm-{rule}",
        )
        for rule, v in rules
    ]


@dataclass
class Record:
    task: str
    gen_length: int
    block_length: int
    sampler: str
    n: int
    accuracy: float
    mean_nfe: float
    tokens_per_s: float
    latency_s: float  # wall time per prompt
    phase1_steps_per_block: float
    early_stop_rate: float  # fraction of blocks finished by the KL early stop
    config: dict[str, Any]
    cache: str
    mask_ratio: float = 1.0  # share of the answer region left masked (1.0: plain generation)
    family: str = ""  # the sampler's family (one curve in the Pareto plots)
    scores: dict[str, Any] = field(default_factory=dict)  # task-specific scores beside accuracy (code tasks)


def decode_batches(
    loaded: LoadedModel,
    sampler: Sampler,
    prompts: list[str],
    *,
    gen_length: int,
    block_length: int,
    batch_size: int,
    canvases: torch.Tensor | None = None,
) -> Iterator[tuple[int, GenerationOutput, float]]:
    """Decode `prompts` batch by batch with one sampler; yields (index of the batch's first prompt,
    its output, the decode's wall time in seconds). `canvases` [n, gen_length]: fill in their masked
    positions instead of generating from scratch."""
    for start in range(0, len(prompts), batch_size):
        ids, mask = loaded.encode_batch(prompts[start : start + batch_size])
        begin = time.perf_counter()
        out = generate(
            loaded.denoiser,
            ids,
            attention_mask=mask,
            gen_length=gen_length,
            block_length=block_length,
            config=sampler.config,
            cache=sampler.cache,
            canvas=None if canvases is None else canvases[start : start + batch_size],
        )
        yield start, out, time.perf_counter() - begin


@dataclass
class Tally:
    """Decoding statistics summed over a sampler's batches, turned into a `Record` at the end."""

    n: int = 0
    nfe: int = 0
    refine: float = 0.0
    stopped: float = 0.0
    blocks: int = 0
    tokens: int = 0
    wall: float = 0.0

    def add(self, out: GenerationOutput, seconds: float, tokens: int | None = None) -> None:
        """One batch's output; `tokens` the generated tokens it counts (default: its whole canvas)."""
        self.n += out.generated.shape[0]
        self.nfe += int(out.nfe_per_sequence.sum())
        self.refine += float(out.refine_steps.sum())
        self.stopped += float(out.early_stopped.sum())
        self.blocks += out.refine_steps.numel()
        self.tokens += out.generated.numel() if tokens is None else tokens
        self.wall += seconds

    def record(self, sampler: Sampler, *, accuracy: float, **fields: Any) -> Record:
        return Record(
            sampler=sampler.name,
            n=self.n,
            accuracy=accuracy,
            mean_nfe=self.nfe / self.n,
            tokens_per_s=self.tokens / self.wall,
            latency_s=self.wall / self.n,
            phase1_steps_per_block=self.refine / self.blocks,
            early_stop_rate=self.stopped / self.blocks,
            config=sampler.config.to_dict(),
            cache=sampler.cache,
            family=sampler.family,
            **fields,
        )


def run_sampler(
    loaded: LoadedModel,
    sampler: Sampler,
    prompts: list[str],
    score: Callable[[int, str], bool],
    *,
    task: str,
    gen_length: int,
    block_length: int,
    batch_size: int,
    canvases: torch.Tensor | None = None,
    mask_ratio: float = 1.0,
) -> Record:
    """Decode every prompt with one sampler and score the answers (`canvases` as in `decode_batches`)."""
    correct, tally = 0, Tally()
    batches = decode_batches(
        loaded,
        sampler,
        prompts,
        gen_length=gen_length,
        block_length=block_length,
        batch_size=batch_size,
        canvases=canvases,
    )
    for start, out, seconds in batches:
        for row, ids in enumerate(out.generated.tolist()):
            correct += bool(score(start + row, loaded.decode(ids)))
        tally.add(out, seconds)
    return tally.record(
        sampler,
        accuracy=correct / len(prompts),
        task=task,
        gen_length=gen_length,
        block_length=block_length,
        mask_ratio=mask_ratio,
    )


def infill_canvases(loaded: LoadedModel, targets: list[str], gen_length: int, ratio: float, seed: int) -> torch.Tensor:
    """[n, gen_length] reference answers padded with EOS, as in training, with ``round(ratio *
    gen_length)`` positions of each (a seeded uniform choice) set back to the mask."""
    tokenizer = loaded.tokenizer
    if not hasattr(tokenizer, "eos_id"):
        raise ValueError("infilling (mask ratios < 1) needs the project's character tokenizer (an LLaDA-format model)")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask ratios must be in (0, 1], got {ratio!r}")
    rows = []
    generator = torch.Generator().manual_seed(seed)
    for target in targets:
        answer = tokenizer.encode(target, add_bos=False)[:gen_length]
        row = torch.tensor(answer + [tokenizer.eos_id] * (gen_length - len(answer)))
        hidden = torch.randperm(gen_length, generator=generator)[: round(ratio * gen_length)]
        row[hidden] = tokenizer.mask_id
        rows.append(row)
    return torch.stack(rows).to(loaded.device)


def speedups(records: list[Record]) -> list[dict[str, Any]]:
    """Per record: NFE and wall-clock speed ratios against the LLaDA and Fast-dLLM baselines of the
    same task and length (measured in the same run)."""
    by_key = {(r.task, r.gen_length, r.mask_ratio, r.sampler): r for r in records}
    rows = []
    for r in records:
        row = asdict(r)
        for base in ("llada", "fast-dllm-threshold"):
            ref = by_key.get((r.task, r.gen_length, r.mask_ratio, base))
            if ref is not None:
                row[f"nfe_speedup_vs_{base}"] = ref.mean_nfe / r.mean_nfe
                row[f"time_speedup_vs_{base}"] = ref.latency_s / r.latency_s
        rows.append(row)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| task | len | masked | sampler | acc % | NFE | tok/s | latency s | Phase-1/blk | early-stop | "
        "NFE x vs LLaDA | time x vs LLaDA | time x vs Fast-dLLM |\n"
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r['task']} | {r['gen_length']} | {r.get('mask_ratio', 1.0):.0%} | {r['sampler']} | "
        f"{100 * r['accuracy']:.1f} | {r['mean_nfe']:.1f} | "
        f"{r['tokens_per_s']:.0f} | {r['latency_s']:.3f} | {r['phase1_steps_per_block']:.2f} | "
        f"{r['early_stop_rate']:.2f} | {r.get('nfe_speedup_vs_llada', float('nan')):.2f} | "
        f"{r.get('time_speedup_vs_llada', float('nan')):.2f} | "
        f"{r.get('time_speedup_vs_fast-dllm-threshold', float('nan')):.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def write_report(rows: list[dict[str, Any]], meta: dict[str, Any], out_dir: Path) -> list[Path]:
    """results.json, results.md, equal_accuracy.md (the ``lrd`` sampler against LRD without early
    stop and the baselines' curves) and (with matplotlib) one accuracy-vs-NFE figure per task."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = equal_accuracy(rows, "lrd")
    written = [out_dir / "results.json", out_dir / "results.md", out_dir / "equal_accuracy.md"]
    written[0].write_text(json.dumps({"meta": meta, "results": rows, "equal_accuracy": summary}, indent=2))
    written[1].write_text(markdown_table(rows))
    written[2].write_text(equal_accuracy_table(summary, BASELINE_FAMILIES))
    written += plot_accuracy_vs_nfe(rows, out_dir)
    return written


def plot_accuracy_vs_nfe(rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One figure per task, one panel per generation length x mask ratio, each sampler family one
    accuracy-vs-NFE curve (its members sorted by NFE): the Pareto view of every setting run."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return []
    paths = []
    for task in sorted({r["task"] for r in rows}):
        mine = [r for r in rows if r["task"] == task]
        panels = sorted({(r["gen_length"], r.get("mask_ratio", 1.0)) for r in mine}, key=lambda k: (-k[1], k[0]))
        cols = min(3, len(panels))
        nrows = -(-len(panels) // cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
        families = list(dict.fromkeys(r.get("family") or r["sampler"] for r in mine))
        colours = plt.get_cmap("tab20")
        for ax, (gen_length, ratio) in zip(axes.flat, panels, strict=False):
            for family in families:
                pts = sorted(
                    (r["mean_nfe"], 100 * r["accuracy"])
                    for r in mine
                    if (r.get("family") or r["sampler"]) == family
                    and (r["gen_length"], r.get("mask_ratio", 1.0)) == (gen_length, ratio)
                )
                if pts:
                    style = {
                        "color": colours(families.index(family) % 20),
                        "marker": "os^Dv"[families.index(family) % 5],
                    }
                    ax.plot(*zip(*pts, strict=True), markersize=4, label=family, **style)
            regime = "generation" if ratio == 1.0 else f"infilling, {ratio:.0%} masked"
            ax.set(xscale="log", xlabel="mean NFE per answer (log)", ylabel="accuracy %")
            ax.set_title(f"{task}, length {gen_length}, {regime}", fontsize=9)
            ax.set_ylim(-2, 102)
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.tight_layout()
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
        path = out_dir / f"accuracy_vs_nfe_{task}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def equal_accuracy(
    rows: list[dict[str, Any]],
    strategy: str,
    reference: str = "lrd w/o early stop",
    baselines: tuple[str, ...] = BASELINE_FAMILIES,
) -> list[dict[str, Any]]:
    """Per task x length x mask ratio: `strategy` against `reference` (accuracy difference, NFE), the
    LLaDA baseline's NFE, and for each baseline family the fewest NFE any of its settings needs to
    reach at least the strategy's accuracy (None when none does; its best accuracy is given)."""
    panel = {}
    for r in rows:
        panel.setdefault((r["task"], r["gen_length"], r.get("mask_ratio", 1.0)), []).append(r)
    out = []
    for (task, gen_length, ratio), members in panel.items():
        by_name = {r["sampler"]: r for r in members}
        if strategy not in by_name:
            continue
        mine, ref = by_name[strategy], by_name.get(reference)
        row: dict[str, Any] = {
            "task": task,
            "gen_length": gen_length,
            "mask_ratio": ratio,
            "accuracy": mine["accuracy"],
            "mean_nfe": mine["mean_nfe"],
            "reference_accuracy": None if ref is None else ref["accuracy"],
            "reference_nfe": None if ref is None else ref["mean_nfe"],
            "llada_nfe": by_name["llada"]["mean_nfe"] if "llada" in by_name else None,
        }
        for family in baselines:
            fam = [r for r in members if (r.get("family") or r["sampler"]) == family]
            reach = [r["mean_nfe"] for r in fam if r["accuracy"] >= mine["accuracy"]]
            row[f"{family}_nfe"] = min(reach) if reach else None
            row[f"{family}_best_accuracy"] = max((r["accuracy"] for r in fam), default=None)
        out.append(row)
    return out


def equal_accuracy_table(rows: list[dict[str, Any]], baselines: tuple[str, ...]) -> str:
    """Markdown for `equal_accuracy` rows."""
    head = "| task | len | masked | acc % | NFE | vs w/o early stop: Δ acc, NFE | LLaDA NFE | " + " | ".join(
        f"{b} NFE at ≥ equal acc" for b in baselines
    )
    lines = [head + " |", "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(baselines)]
    for r in rows:
        ref = (
            "–"
            if r["reference_accuracy"] is None
            else f"{100 * (r['accuracy'] - r['reference_accuracy']):+.1f}, {r['reference_nfe']:.1f}"
        )
        cells = [
            f"{r[f'{b}_nfe']:.1f}"
            if r[f"{b}_nfe"] is not None
            else f"never (best {100 * (r[f'{b}_best_accuracy'] or 0):.1f} %)"
            for b in baselines
        ]
        llada = "–" if r["llada_nfe"] is None else f"{r['llada_nfe']:.1f}"
        lines.append(
            f"| {r['task']} | {r['gen_length']} | {r['mask_ratio']:.0%} | {100 * r['accuracy']:.1f} | "
            f"{r['mean_nfe']:.1f} | {ref} | {llada} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def run_benchmark(
    loaded: LoadedModel,
    samplers: list[Sampler],
    *,
    tasks: Iterable[str],
    gen_lengths: Iterable[int],
    block_length: int,
    n: int,
    batch_size: int,
    seed: int = 0,
    progress: bool = True,
    mask_ratios: Iterable[float] = (1.0,),
) -> list[Record]:
    """Every sampler on the same held-out test prompts of every task and generation length; mask
    ratios below 1 also run each as infilling of the reference answers (`infill_canvases`)."""
    from . import tasks as task_suite

    plan = [(t, g, m, s) for t in tasks for g in gen_lengths for m in mask_ratios for s in samplers]
    records = []
    examples = {t: task_suite.generate_examples(t, "test", n, seed) for t in dict.fromkeys(t for t, _, _, _ in plan)}
    warm_up = next(iter(examples.values()))[:batch_size]  # first-call costs must not land on one sampler
    ids, mask = loaded.encode_batch([ex.prompt for ex in warm_up])
    generate(loaded.denoiser, ids, attention_mask=mask, gen_length=block_length, block_length=block_length)
    canvas_cache: dict[tuple[str, int, float], torch.Tensor] = {}
    for task, gen_length, ratio, sampler in _bar(plan, progress):
        prompts = [ex.prompt for ex in examples[task]]
        canvases = None
        if ratio < 1.0:
            key = (task, gen_length, ratio)
            if key not in canvas_cache:
                targets = [ex.target for ex in examples[task]]
                canvas_cache[key] = infill_canvases(loaded, targets, gen_length, ratio, seed)
            canvases = canvas_cache[key]

        def score(i: int, text: str, task: str = task, prompts: list[str] = prompts) -> bool:
            return task_suite.score(task, prompts[i], text)

        records.append(
            run_sampler(
                loaded,
                sampler,
                prompts,
                score,
                task=task,
                gen_length=gen_length,
                block_length=block_length,
                batch_size=batch_size,
                canvases=canvases,
                mask_ratio=ratio,
            )
        )
    return records


def _bar(items: list[Any], enabled: bool) -> Any:
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc="benchmark", unit="run")
