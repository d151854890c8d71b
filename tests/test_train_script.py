"""The training script end to end on a tiny model: a few steps, its options and its refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_tiny_llada.py"
TINY = ["--threads", "1", "--no-bf16", "--d-model", "32", "--n-heads", "2", "--n-layers", "1"]
TINY += ["--mlp-hidden-size", "64"]


def train(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path / "model"), "--checkpoint", str(tmp_path / "c.pt")]
    return subprocess.run(
        [*command, *TINY, "--batch-size", "4", "--eval-n", "1", "--gen-mix", "64:1", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=SCRIPT.parents[1],
    )


def test_tasks_named_for_full_attention_train_beside_block_steps(tmp_path: Path) -> None:
    done = train(
        tmp_path,
        "--steps", "2", "--log-every", "1", "--attention-mix", "block:1",
        "--task-mix", "count:0.5,hide:0.5", "--full-attention-tasks", "hide",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    log = json.loads((tmp_path / "model" / "train_log.json").read_text())
    assert [entry["step"] for entry in log["loss"]] == [1, 2]
    assert all(entry["loss"] > 0 for entry in log["loss"])


def test_full_attention_tasks_outside_the_mix_are_refused(tmp_path: Path) -> None:
    done = train(tmp_path, "--steps", "1", "--task-mix", "count:1", "--full-attention-tasks", "hide")
    assert done.returncode == 2
    assert "--full-attention-tasks names tasks not in --task-mix: ['hide']" in done.stderr


def test_the_dream_objective_trains_the_shifted_prediction_and_saves_dream_format(tmp_path: Path) -> None:
    done = train(tmp_path, "--steps", "2", "--log-every", "1", "--attention-mix", "full:1", "--objective", "dream")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "model"
    assert json.loads((out / "config.json").read_text())["model_type"] == "Dream"
    assert (out / "generation_config.json").exists() and (out / "tokenizer.json").exists()
    log = json.loads((out / "train_log.json").read_text())
    assert log["args"]["objective"] == "dream" and len(log["loss"]) == 2


def test_the_dream_objective_refuses_block_attention(tmp_path: Path) -> None:
    done = train(tmp_path, "--steps", "1", "--attention-mix", "full:0.5,block:0.5", "--objective", "dream")
    assert done.returncode == 2
    assert "--objective dream trains full attention only" in done.stderr
