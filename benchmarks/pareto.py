"""Accuracy against forwards, engine alone and engine + LRD, from a threshold sweep of `fast_dllm_composed.py`.

    FAST_DLLM_ROOT=../shared/upstream/fast-dllm/a9b81e4 PYTHONPATH=. .venv-tf4/bin/python \\
        benchmarks/fast_dllm_composed.py --gen-lengths 64 --caches prefix --n 100 \\
        --rules "threshold 0.5,threshold 0.7,threshold 0.9" --variants "fast-dllm,fast-dllm + lrd" --out DIR
    python benchmarks/pareto.py DIR/results.json [--out DIR/pareto.md]

For each task, length and cache: one row per rule (the swept threshold or factor) with every
variant's accuracy and forwards per answer, and, per variant, its Pareto front: the points that no
other point of the *same* variant beats in both accuracy and forwards. A variant composes with the
engine where its front lies at or above the engine's: for every engine point there is one of its
own with no more forwards and no less accuracy (`covers`), or its front read linearly between its
swept thresholds reaches the engine's accuracy at the engine's forwards (`covers_between`).
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any

Point = tuple[float, float]  # (forwards per answer, accuracy)


def front(points: list[Point]) -> list[Point]:
    """The points not beaten in both coordinates (fewer or equal forwards and higher or equal
    accuracy, one of them strictly) by another point, by forwards."""
    keep = []
    for nfe, acc in points:
        beaten = any(
            (n2 <= nfe and a2 >= acc) and (n2 < nfe or a2 > acc) for n2, a2 in points if (n2, a2) != (nfe, acc)
        )
        if not beaten:
            keep.append((nfe, acc))
    return sorted(set(keep))


def covers(candidate: list[Point], engine: list[Point]) -> bool:
    """Whether every engine point has a candidate point with no more forwards and no less accuracy."""
    return all(any(n2 <= nfe and a2 >= acc for n2, a2 in candidate) for nfe, acc in engine)


def accuracy_at(points: list[Point], nfe: float) -> float:
    """The accuracy the front of `points` reaches at `nfe` forwards, read linearly between its swept
    points (a threshold between two swept ones); -inf below its cheapest point."""
    return _read(front(points), nfe)


def _read(curve: list[Point], nfe: float) -> float:
    """`accuracy_at` on a front already formed."""
    if nfe < curve[0][0]:
        return -float("inf")
    for (n1, a1), (n2, a2) in itertools.pairwise(curve):
        if n1 <= nfe < n2:
            return a1 + (a2 - a1) * (nfe - n1) / (n2 - n1)
    return curve[-1][1]


def covers_between(candidate: list[Point], engine: list[Point]) -> bool:
    """`covers` with the candidate's front read between its swept points (`accuracy_at`)."""
    curve = front(candidate)
    return all(_read(curve, nfe) >= acc - 1e-9 for nfe, acc in engine)


def tables(records: list[dict[str, Any]]) -> str:
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["task"], r["gen_length"], r["cache"]), []).append(r)
    out = []
    for (task, gen, cache), rows in groups.items():
        variants = list(dict.fromkeys(r["variant"] for r in rows))
        rules = list(dict.fromkeys(r["rule"] for r in rows))
        cell = {(r["rule"], r["variant"]): r for r in rows}
        out.append(f"### {task}, gen {gen}, {cache} cache\n")
        out.append("| rule | " + " | ".join(f"{v}: acc %, NFE" for v in variants) + " |")
        out.append("|---|" + "---:|" * len(variants))
        for rule in rules:
            cells = []
            for v in variants:
                r = cell.get((rule, v))
                cells.append("–" if r is None else f"{100 * r['accuracy']:.1f}, {r['nfe']:.2f}")
            out.append(f"| {rule} | " + " | ".join(cells) + " |")
        points = {v: [(r["nfe"], r["accuracy"]) for r in rows if r["variant"] == v] for v in variants}
        engine = front(points[variants[0]])
        out.append("")
        for v in variants:
            shown = ", ".join(f"({n:.2f}, {100 * a:.1f})" for n, a in front(points[v]))
            verdict = (
                ""
                if v == variants[0]
                else f" — covers the {variants[0]} front: at its swept points {covers(points[v], engine)}, "
                f"read between them {covers_between(points[v], engine)}"
            )
            out.append(f"- {v} front (NFE, acc %): {shown}{verdict}")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a results.json of fast_dllm_composed.py")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown here (default: print it)")
    args = parser.parse_args()
    records = json.loads(args.results.read_text())["records"]
    text = tables(records)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
