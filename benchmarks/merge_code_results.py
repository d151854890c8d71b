"""Merge slices of ``lrd bench --model code`` into one table.

    PYTHONPATH=. python benchmarks/merge_code_results.py SLICE_DIR [SLICE_DIR ...] --out DIR

On a 2-core CPU the full code benchmark takes longer than a working session, so it runs in slices
(a task, or a body length, per ``lrd bench`` call) and, where one size alone is too long, in shards
of its examples (``--offset``). Every slice runs all samplers and its own baselines in one process,
so its speed ratios are side by side already.

Slices of different (task, size) are concatenated. Shards of one (task, size) must hold disjoint
example ranges, the same samplers and the same settings; their rows are pooled (scores, forwards and
wall time weighted by examples, speed ratios recomputed from the pooled wall times), and so are the
fillers' scores. Confidence quantiles cannot be pooled from quantiles: each shard keeps its own line,
named by its example range. Each slice's KL quantiles and command are kept under the slice's name.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repository

from lrd_plugin import bench, code_bench

SETTINGS = ("model", "seed", "block_length", "max_span", "contexts", "lrd_config")  # shards must agree on these
UNRECORDED = {"seed": 0}  # slices written before a setting was recorded ran with its default
MEANS = ("accuracy", "mean_nfe", "latency_s", "phase1_steps_per_block", "early_stop_rate")  # pooled by examples


def _weighted(parts: list[dict[str, Any]], key: str, weight: str = "n") -> float | None:
    """The mean of ``key`` over ``parts`` weighted by ``weight`` (None when no part has weight)."""
    total = sum(p[weight] for p in parts if p.get(key) is not None)
    if not total:
        return None
    return sum(p[key] * p[weight] for p in parts if p.get(key) is not None) / total


def pool_scores(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores of disjoint example sets (each with its ``n``) as one: means weighted by examples, ``runs``
    by the examples whose doctests ran (``n_runs``)."""
    if len(parts) == 1:
        return dict(parts[0])
    out = {k: _weighted(parts, k) for k in parts[0] if k not in ("n", "runs", "n_runs")}
    out |= {"n": sum(p["n"] for p in parts), "n_runs": sum(p["n_runs"] for p in parts)}
    out["runs"] = _weighted(parts, "runs", "n_runs")
    return out


def pool_rows(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One sampler's rows from shards of the same (task, size) as one row over all their examples."""
    row = {k: v for k, v in parts[0].items() if not k.startswith(("nfe_speedup_vs_", "time_speedup_vs_"))}
    row |= {k: _weighted(parts, k) for k in MEANS}
    row["n"] = sum(p["n"] for p in parts)
    wall = sum(p["latency_s"] * p["n"] for p in parts)
    row["tokens_per_s"] = sum(p["tokens_per_s"] * p["latency_s"] * p["n"] for p in parts) / wall
    row["scores"] = pool_scores([p["scores"] | {"n": p["n"]} for p in parts])
    del row["scores"]["n"]
    return row


def speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``bench.speedups`` on rows: ratios against the baselines of the same (task, size)."""
    fields = set(bench.Record.__dataclass_fields__)
    records = [bench.Record(**{k: v for k, v in r.items() if k in fields}) for r in rows]
    return bench.speedups(records)


def merge(slices: list[Path]) -> dict[str, Any]:
    """One results object from several slices' ``results.json`` (rows, statistics, and each slice's meta)."""
    shards: dict[tuple[str, int], list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    kl: dict[str, Any] = {}
    metas: dict[str, Any] = {}
    for folder in slices:
        data = json.loads((folder / "results.json").read_text())
        metas[folder.name], kl[folder.name] = data["meta"], data["statistics"]["kl"]
        for key in dict.fromkeys((r["task"], r["gen_length"]) for r in data["results"]):
            shards[key].append((folder.name, data))
    rows: list[dict[str, Any]] = []
    trivial: dict[str, Any] = {}
    confidence: dict[str, Any] = {}
    for (task, size), parts in shards.items():
        name = f"{task}/{size}"
        own = [[r for r in data["results"] if (r["task"], r["gen_length"]) == (task, size)] for _, data in parts]
        ranges = _check_shards(name, parts, own)
        by_sampler = defaultdict(list)
        for shard in own:
            for r in shard:
                by_sampler[r["sampler"]].append(r)
        rows += [pool_rows(p) if len(p) > 1 else p[0] for p in by_sampler.values()]
        trivial[name] = {
            filler: pool_scores([data["statistics"]["trivial"][name][filler] for _, data in parts])
            for filler in parts[0][1]["statistics"]["trivial"][name]
        }
        for (lo, hi), (_, data) in zip(ranges, parts, strict=True):
            label = name if len(parts) == 1 else f"{name} [{lo}:{hi}]"
            confidence[label] = data["statistics"]["confidence"][name]
    return {
        "meta": {"slices": metas},
        "results": speedups(rows),
        "statistics": {"trivial": trivial, "confidence": confidence, "kl": kl},
    }


def _check_shards(name: str, parts: list[tuple[str, dict[str, Any]]], own: list[list[dict]]) -> list[tuple[int, int]]:
    """The example range [offset, offset + n) of each shard of ``name``; refuses overlapping ranges,
    different samplers or different settings (they would not pool into one row)."""
    (first, first_data), ranges = parts[0], []
    for (folder, data), rows in zip(parts, own, strict=True):
        lo = data["meta"].get("offset", 0)
        hi = lo + rows[0]["n"]
        for (a, b), (other, _) in zip(ranges, parts, strict=False):
            if lo < b and a < hi:
                raise ValueError(f"slice {folder} repeats examples of {name} that slice {other} holds ({a}-{b - 1})")
        ranges.append((lo, hi))
        if [r["sampler"] for r in rows] != [r["sampler"] for r in own[0]]:
            raise ValueError(f"slice {folder} runs other samplers on {name} than slice {first}")
        if any(_setting(data, k) != _setting(first_data, k) for k in SETTINGS):
            raise ValueError(f"slice {folder} differs from slice {first} in one of {SETTINGS}")
    return ranges


def _setting(data: dict[str, Any], key: str) -> Any:
    return data["meta"].get(key, UNRECORDED.get(key))


def markdown(merged: dict[str, Any]) -> str:
    stats = merged["statistics"]
    text = code_bench.code_table(merged["results"]) + "\n"
    text += code_bench.statistics_text({"trivial": stats["trivial"], "confidence": stats["confidence"], "kl": []})
    for name, kl in stats["kl"].items():
        if kl:
            text += f"\nKL between successive predictions of `lrd`, slice `{name}`:\n\n{code_bench.kl_text(kl)}\n"
    text += "\nSlices (each one `lrd bench` process):\n\n"
    text += "".join(f"- `{name}`: `lrd {' '.join(m['argv'])}`\n" for name, m in merged["meta"]["slices"].items())
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slices", nargs="+", type=Path, help="folders written by `lrd bench --model code --out`")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    merged = merge(args.slices)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(merged, indent=2))
    (args.out / "results.md").write_text(markdown(merged))
    plots = bench.plot_accuracy_vs_nfe(merged["results"], args.out)
    print("wrote " + ", ".join(str(p) for p in [args.out / "results.json", args.out / "results.md", *plots]))


if __name__ == "__main__":
    main()
