"""How the default early stop was chosen: each candidate against LRD without early stop, paired.

    PYTHONPATH=. python benchmarks/early_stop_selection.py [--n 400] [--threads 2]

Every sampler decodes the same held-out prompts of each task (gen 64 unless ``--gen-length``,
block 32) as plain generation (100 % masked) and as infilling of the reference answer with 90 %
and 50 % of it masked. Per task and regime, and pooled per task over the regimes, it reports accuracy, mean
NFE and the paired outcome against ``lrd w/o early stop``: prompts it gets right that the
reference gets wrong (won) and the reverse (lost). The paired counts separate a rule that
systematically loses answers from commit-order noise (a changed commit order flips a few answers
both ways). Fast-dLLM's threshold rule at several thresholds gives the baseline's own
accuracy-vs-NFE curve. Writes ``results.json`` and ``results.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lrd_plugin import bench, tasks
from lrd_plugin.config import LRDConfig
from lrd_plugin.loading import DEFAULT_MODEL, load_model

REFERENCE = "lrd w/o early stop"
BLOCK = 32


def candidates(
    gates: list[float], kl_gates: list[float], thresholds: list[float], block_gates: list[float] = ()
) -> list[bench.Sampler]:
    lrd = LRDConfig()
    runs = [bench.Sampler(REFERENCE, lrd.replace(early_stop=False), "none")]
    runs.append(bench.Sampler("lrd (paper stop)", LRDConfig.paper(), "none"))
    runs += [bench.Sampler(f"lrd per_position c={c:g}", lrd.replace(early_stop_confidence=c), "none") for c in gates]
    block = lrd.replace(early_stop_scope="block")
    runs += [
        bench.Sampler(f"lrd per_position c={c:g} block", block.replace(early_stop_confidence=c), "none")
        for c in block_gates
    ]
    kl_gated = lrd.replace(early_stop_rule="kl_gated")
    runs += [
        bench.Sampler(f"lrd kl_gated c={c:g}", kl_gated.replace(early_stop_confidence=c), "none") for c in kl_gates
    ]
    return runs + bench.baseline_sweeps(thresholds)


def decode(
    loaded, sampler: bench.Sampler, prompts: list[str], canvases, batch: int, gen_length: int
) -> tuple[list[str], list[int]]:
    """Each prompt's answer text and NFE (the pairing needs them per prompt, not averaged)."""
    texts, nfe = [], []
    batches = bench.decode_batches(
        loaded, sampler, prompts, gen_length=gen_length, block_length=BLOCK, batch_size=batch, canvases=canvases
    )
    for _, out, _ in batches:
        texts += [loaded.decode(ids) for ids in out.generated.tolist()]
        nfe += out.nfe_per_sequence.tolist()
    return texts, nfe


def summarise(name: str, correct: list[bool], nfe: list[int], reference: list[bool]) -> dict:
    return {
        "sampler": name,
        "n": len(correct),
        "accuracy": sum(correct) / len(correct),
        "mean_nfe": sum(nfe) / len(nfe),
        "won": sum(c and not r for c, r in zip(correct, reference, strict=True)),
        "lost": sum(r and not c for c, r in zip(correct, reference, strict=True)),
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| task | masked | sampler | acc % | NFE | Δ acc vs w/o ES | won / lost |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    ref = {(r["task"], r["masked"]): r["accuracy"] for r in rows if r["sampler"] == REFERENCE}
    for r in rows:
        delta = 100 * (r["accuracy"] - ref[(r["task"], r["masked"])])
        lines.append(
            f"| {r['task']} | {r['masked']} | {r['sampler']} | {100 * r['accuracy']:.2f} | {r['mean_nfe']:.1f} | "
            f"{delta:+.2f} | {r['won']} / {r['lost']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=400, help="held-out prompts per task")
    p.add_argument("--tasks", nargs="+", default=["arith", "list", "sudoku"], choices=["arith", "list", "sudoku"])
    p.add_argument("--gen-length", type=int, default=64, help="a multiple of the block length, 32")
    p.add_argument("--mask-ratios", nargs="+", type=float, default=[1.0, 0.9, 0.5])
    p.add_argument("--gates", nargs="+", type=float, default=[0.99, 0.999, 0.9999])
    p.add_argument(
        "--block-gates", nargs="+", type=float, default=[], help="per_position gates also run with block scope"
    )
    p.add_argument("--kl-gated", nargs="+", type=float, default=[0.999], help="kl_gated confidence gates")
    p.add_argument("--thresholds", nargs="+", type=float, default=[0.9, 0.99, 0.999, 0.9999])
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="e.g. cuda; accuracy and NFE do not depend on it")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/early_stop"))
    p.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help="only merge the results of earlier runs (e.g. one per task, run in parallel) into --out",
    )
    args = p.parse_args()
    if args.merge:
        parts = [json.loads((d / "results.json").read_text()) for d in args.merge]
        write(args.out, parts[0]["meta"], [row for part in parts for row in part["rows"]])
        return
    torch.set_num_threads(args.threads)
    loaded = load_model(DEFAULT_MODEL, device=args.device)
    runs = candidates(args.gates, args.kl_gated, args.thresholds, args.block_gates)
    rows: list[dict] = []
    begin = time.perf_counter()
    for task in args.tasks:
        examples = tasks.generate_examples(task, "test", args.n, 0)
        prompts = [ex.prompt for ex in examples]
        pooled: dict[str, tuple[list[bool], list[int]]] = {}
        for ratio in args.mask_ratios:
            canvases = None
            if ratio < 1.0:
                canvases = bench.infill_canvases(loaded, [ex.target for ex in examples], args.gen_length, ratio, 0)
            outcomes = {}
            for sampler in runs:
                name = sampler.name
                texts, nfe = decode(loaded, sampler, prompts, canvases, args.batch_size, args.gen_length)
                outcomes[name] = ([tasks.score(task, q, t) for q, t in zip(prompts, texts, strict=True)], nfe)
                pooled.setdefault(name, ([], []))
                pooled[name][0].extend(outcomes[name][0])
                pooled[name][1].extend(nfe)
                print(f"[{time.perf_counter() - begin:6.0f}s] {task} {ratio:.0%} {name}", file=sys.stderr)
            for name, (correct, nfe) in outcomes.items():
                rows.append(
                    {"task": task, "masked": f"{ratio:.0%}", **summarise(name, correct, nfe, outcomes[REFERENCE][0])}
                )
        for name, (correct, nfe) in pooled.items():
            rows.append({"task": task, "masked": "pooled", **summarise(name, correct, nfe, pooled[REFERENCE][0])})
    meta = {
        "n": args.n,
        "gen_length": args.gen_length,
        "block_length": BLOCK,
        "threads": args.threads,
        "device": args.device,
        "reference": REFERENCE,
    }
    write(args.out, meta, rows)


def write(out: Path, meta: dict, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    table = markdown(rows)
    (out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
