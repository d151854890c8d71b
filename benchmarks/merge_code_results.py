"""Merge slices of ``lrd bench --model code`` into one table.

    PYTHONPATH=. python benchmarks/merge_code_results.py SLICE_DIR [SLICE_DIR ...] --out DIR

On a 2-core CPU the full code benchmark takes longer than a working session, so it runs in slices
(a task, or a body length, per ``lrd bench`` call). Every slice runs all samplers and its own
baselines in one process, so its speed ratios are side by side already; merging only concatenates
the rows and the statistics, and keeps each slice's KL quantiles (they depend on the task) and
command under the slice's name. Slices must not repeat a (task, size).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repository

from lrd_plugin import bench, code_bench


def merge(slices: list[Path]) -> dict[str, Any]:
    """One results object from several slices' ``results.json`` (rows, statistics, and each slice's meta)."""
    rows: list[dict[str, Any]] = []
    trivial: dict[str, Any] = {}
    confidence: dict[str, Any] = {}
    kl: dict[str, Any] = {}
    metas: dict[str, Any] = {}
    seen: set[tuple[str, int]] = set()
    for folder in slices:
        data = json.loads((folder / "results.json").read_text())
        keys = {(r["task"], r["gen_length"]) for r in data["results"]}
        if keys & seen:
            raise ValueError(f"slice {folder} repeats {sorted(keys & seen)} of an earlier slice")
        seen |= keys
        rows += data["results"]
        trivial |= data["statistics"]["trivial"]
        confidence |= data["statistics"]["confidence"]
        kl[folder.name] = data["statistics"]["kl"]
        metas[folder.name] = data["meta"]
    return {
        "meta": {"slices": metas},
        "results": rows,
        "statistics": {"trivial": trivial, "confidence": confidence, "kl": kl},
    }


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
