"""benchmarks/pareto.py: the Pareto fronts that issue 16's threshold sweeps are read with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "pareto.py"


def _load() -> ModuleType:
    return load_script(SCRIPT, "pareto")


def test_front_keeps_only_the_points_nothing_beats_in_both():
    pareto = _load()
    points = [(3.0, 0.80), (2.0, 0.80), (4.0, 0.90), (4.0, 0.85), (5.0, 0.90), (1.5, 0.60)]
    # (3.0, 0.80) loses to (2.0, 0.80); (4.0, 0.85) and (5.0, 0.90) to (4.0, 0.90)
    assert pareto.front(points) == [(1.5, 0.60), (2.0, 0.80), (4.0, 0.90)]
    assert pareto.front([(2.0, 0.5), (2.0, 0.5)]) == [(2.0, 0.5)]  # a repeated point is kept once


def test_covers_needs_a_point_no_worse_in_both_for_every_engine_point():
    pareto = _load()
    engine = [(2.0, 0.80), (4.0, 0.90)]
    assert pareto.covers([(2.0, 0.80), (3.5, 0.92)], engine)
    assert not pareto.covers([(1.0, 0.85), (4.5, 0.95)], engine)  # nothing at <= 4 forwards reaches 0.90


def test_covers_between_reads_the_front_linearly_between_swept_points():
    pareto = _load()
    candidate = [(2.0, 0.50), (4.0, 0.90)]
    assert pareto.accuracy_at(candidate, 3.0) == 0.70
    assert pareto.accuracy_at(candidate, 1.0) == -float("inf")  # cheaper than any swept point
    assert pareto.accuracy_at(candidate, 9.0) == 0.90
    assert pareto.covers_between(candidate, [(3.0, 0.70), (4.5, 0.90)])
    assert not pareto.covers(candidate, [(3.0, 0.70)])  # no swept point at <= 3 forwards reaches 0.70
    assert not pareto.covers_between(candidate, [(3.0, 0.71)])


def test_the_script_writes_one_table_per_task_with_each_variant_front(tmp_path):
    records = [
        {"task": "arith", "gen_length": 64, "cache": "prefix", "rule": f"threshold {t}", "variant": v}
        | {"accuracy": acc, "nfe": nfe}
        for t, v, acc, nfe in (
            (0.7, "fast-dllm", 0.80, 2.5),
            (0.9, "fast-dllm", 0.85, 3.6),
            (0.7, "fast-dllm + lrd", 0.81, 2.4),
            (0.9, "fast-dllm + lrd", 0.85, 2.8),
        )
    ]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"records": records}))
    out = tmp_path / "pareto.md"
    subprocess.run([sys.executable, str(SCRIPT), str(results), "--out", str(out)], check=True)
    text = out.read_text()
    assert "### arith, gen 64, prefix cache" in text
    assert "| threshold 0.9 | 85.0, 3.60 | 85.0, 2.80 |" in text
    assert "- fast-dllm + lrd front (NFE, acc %): (2.40, 81.0), (2.80, 85.0) — covers the fast-dllm front: " in text
    assert "at its swept points True, read between them True" in text
