"""The side-by-side benchmark: records, same-run speed ratios, JSON/Markdown/PNG report, CLI."""

import json

import pytest
import torch

from lrd_plugin import LRDConfig, bench, generate
from lrd_plugin.cli import main
from lrd_plugin.loading import load_model
from lrd_plugin.tasks import TASKS, generate_examples


@pytest.fixture(scope="module")
def records():
    loaded = load_model("default")
    samplers = bench.standard_samplers() + bench.ablation_samplers() + bench.sweep_samplers("r_f", [0.3])
    return bench.run_benchmark(
        loaded,
        samplers,
        tasks=["arith", "sudoku"],
        gen_lengths=[16],
        block_length=8,
        n=2,
        batch_size=2,
        progress=False,
    )


def test_every_task_length_and_sampler_is_measured(records):
    assert len(records) == 2 * 1 * 11
    for r in records:
        assert r.n == 2 and 0.0 <= r.accuracy <= 1.0 and r.latency_s > 0 and r.tokens_per_s > 0
        assert 1 <= r.mean_nfe <= 2 * (20 + 8)
    by_name = {r.sampler: r for r in records if r.task == "arith"}
    assert by_name["llada"].mean_nfe == 16 and by_name["llada"].phase1_steps_per_block == 0  # one token per step
    assert by_name["lrd w/o refinement"].phase1_steps_per_block == 0
    assert by_name["lrd w/o early stop"].early_stop_rate == 0
    assert by_name["lrd (paper stop)"].config["early_stop_rule"] == "paper"
    assert by_name["lrd r_f=0.3"].config["r_f"] == 0.3
    assert by_name["fast-dllm-threshold"].cache == "prefix" and by_name["lrd"].cache == "none"


def test_speedups_compare_against_both_baselines_of_the_same_run(records):
    rows = bench.speedups(records)
    for row in rows:
        base = next(
            r for r in records if (r.task, r.gen_length, r.sampler) == (row["task"], row["gen_length"], "llada")
        )
        assert row["nfe_speedup_vs_llada"] == pytest.approx(base.mean_nfe / row["mean_nfe"])
        assert "time_speedup_vs_fast-dllm-threshold" in row
    table = bench.markdown_table(rows)
    assert table.count("\n") == len(rows) + 2 and "| arith | 16 | 100% | lrd |" in table


def test_report_files(records, tmp_path):
    paths = bench.write_report(bench.speedups(records), {"model": "test"}, tmp_path)
    names = sorted(p.name for p in paths)
    assert names == [
        "accuracy_vs_nfe_arith.png",
        "accuracy_vs_nfe_sudoku.png",
        "equal_accuracy.md",
        "results.json",
        "results.md",
    ]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"] == {"model": "test"} and len(data["results"]) == len(records)
    assert [(r["task"], r["reference_nfe"] is not None) for r in data["equal_accuracy"]] == [
        ("arith", True),
        ("sudoku", True),
    ]
    assert (tmp_path / "accuracy_vs_nfe_arith.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_command_refuses_bad_sweeps_and_duplicates(tmp_path, capsys):
    with pytest.raises(SystemExit, match="FIELD one of"):
        main(["bench", "--quick", "--sweep", "alpha_form=entropy", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="comma-separated numbers"):
        main(["bench", "--quick", "--sweep", "tau_decode=a,b", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="requested twice"):
        main(["bench", "--quick", "--sweep-threshold", "0.9", "0.9", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["bench", "--quick", "--per-position", "1.5", "--out", str(tmp_path)])
    assert "early_stop_confidence must be in [0.0, 1.0], got 1.5" in capsys.readouterr().err


def test_bench_command_quick(tmp_path, capsys):
    assert main(["bench", "--quick", "--n", "2", "--tasks", "list", "--out", str(tmp_path), "--set", "r_f=0.2"]) == 0
    out = capsys.readouterr().out
    assert "| list | 64 | 100% | lrd+fast-dllm-threshold |" in out
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["n_per_task"] == 2 and LRDConfig.from_dict(meta["lrd_config"]).r_f == 0.2


@pytest.mark.parametrize("rule", ["kl_gated", "per_position"])
def test_gated_samplers_run_alone_and_composed_with_fast_dllm(rule):
    alone, composed = bench.gated_samplers(rule, [0.8])
    assert alone.config.early_stop_rule == composed.config.early_stop_rule == rule
    assert alone.config.early_stop_confidence == 0.8 and alone.cache == "none"
    assert (composed.config.policy, composed.config.threshold, composed.cache) == ("threshold", 0.9, "prefix")
    assert alone.family == f"lrd {rule}" and composed.family == f"lrd {rule}+fast-dllm"


def test_baseline_sweeps_join_the_standard_baselines_family():
    sweeps = bench.baseline_sweeps([0.99], [0.5])
    assert [(s.name, s.family, s.cache) for s in sweeps] == [
        ("fast-dllm-threshold t=0.99", "fast-dllm-threshold", "prefix"),
        ("fast-dllm-factor f=0.5", "fast-dllm-factor", "prefix"),
    ]
    assert sweeps[0].config == LRDConfig.base(policy="threshold", threshold=0.99)
    standard = {s.name: s.family for s in bench.standard_samplers()}
    assert standard["fast-dllm-threshold"] == "fast-dllm-threshold" and standard["lrd"] == "lrd"


def _row(sampler, accuracy, nfe, family=None, task="arith"):
    return {
        "task": task,
        "gen_length": 64,
        "mask_ratio": 1.0,
        "sampler": sampler,
        "family": family or sampler,
        "accuracy": accuracy,
        "mean_nfe": nfe,
    }


def test_equal_accuracy_finds_the_cheapest_baseline_setting_that_is_as_accurate():
    rows = [
        _row("llada", 0.8, 64),
        _row("lrd w/o early stop", 0.8, 66),
        _row("lrd", 0.795, 12),
        _row("fast-dllm-threshold", 0.6, 4, "fast-dllm-threshold"),
        _row("fast-dllm-threshold t=0.99", 0.8, 9, "fast-dllm-threshold"),
        _row("fast-dllm-threshold t=0.999", 0.81, 14, "fast-dllm-threshold"),
        _row("fast-dllm-factor", 0.7, 3, "fast-dllm-factor"),
        _row("llada", 1.0, 64, task="list"),
    ]
    [summary] = bench.equal_accuracy(rows, "lrd")
    assert summary["accuracy"] == 0.795 and summary["reference_accuracy"] == 0.8 and summary["llada_nfe"] == 64
    assert summary["fast-dllm-threshold_nfe"] == 9  # t=0.99 is the cheapest setting at >= 79.5 %
    assert summary["fast-dllm-factor_nfe"] is None and summary["fast-dllm-factor_best_accuracy"] == 0.7
    table = bench.equal_accuracy_table([summary], ("fast-dllm-threshold", "fast-dllm-factor"))
    assert "| arith | 64 | 100% | 79.5 | 12.0 | -0.5, 66.0 | 64.0 | 9.0 | never (best 70.0 %) |" in table


def test_infilling_keeps_the_given_tokens_and_scores_the_whole_answer():
    loaded = load_model("default")
    examples = generate_examples("sudoku", "test", 3)
    canvases = bench.infill_canvases(loaded, [ex.target for ex in examples], 32, 0.5, seed=0)
    mask = loaded.tokenizer.mask_id
    assert canvases.shape == (3, 32) and ((canvases == mask).sum(dim=1) == 16).all()
    with pytest.raises(ValueError, match="mask ratios must be in"):
        bench.infill_canvases(loaded, ["1"], 32, 0.0, seed=0)
    records = bench.run_benchmark(
        loaded,
        [bench.Sampler("lrd", LRDConfig(), "none")],
        tasks=["sudoku"],
        gen_lengths=[32],
        block_length=32,
        n=3,
        batch_size=3,
        progress=False,
        mask_ratios=[0.5, 1.0],
    )
    assert [r.mask_ratio for r in records] == [0.5, 1.0]
    ids, attention = loaded.encode_batch([ex.prompt for ex in examples])
    out = generate(loaded.denoiser, ids, attention_mask=attention, gen_length=32, block_length=32, canvas=canvases)
    given = canvases != mask
    assert torch.equal(out.generated[given], canvases[given]) and not (out.generated == mask).any()


def test_early_stop_selection_pairs_every_candidate_with_the_reference(tmp_path):
    """benchmarks/early_stop_selection.py (how the default early stop was chosen): its won/lost
    counts explain each accuracy difference exactly, and the pooled rows add the regimes up."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    args = [
        "--n",
        "3",
        "--tasks",
        "sudoku",
        "--gen-length",
        "32",
        "--mask-ratios",
        "1",
        "0.5",
        "--gates",
        "0.999",
        "--block-gates",
        "0.999",
        "--kl-gated",
        "0.999",
        "--thresholds",
        "0.9",
        "--batch-size",
        "3",
        "--threads",
        "1",
        "--out",
        str(tmp_path),
    ]
    subprocess.run(
        [sys.executable, str(root / "benchmarks" / "early_stop_selection.py"), *args],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["meta"]["gen_length"] == 32
    rows = result["rows"]
    names = [
        "lrd w/o early stop",
        "lrd (paper stop)",
        "lrd per_position c=0.999",
        "lrd per_position c=0.999 block",
        "lrd kl_gated c=0.999",
        "fast-dllm-threshold t=0.9",
    ]
    assert [(r["masked"], r["sampler"]) for r in rows] == [(m, s) for m in ("100%", "50%", "pooled") for s in names]
    ref = {r["masked"]: r for r in rows if r["sampler"] == "lrd w/o early stop"}
    for r in rows:
        assert r["accuracy"] - ref[r["masked"]]["accuracy"] == pytest.approx((r["won"] - r["lost"]) / r["n"])
    for name in names:
        by = {r["masked"]: r for r in rows if r["sampler"] == name}
        assert by["pooled"]["n"] == 6
        assert by["pooled"]["won"] == by["100%"]["won"] + by["50%"]["won"]
        assert by["pooled"]["mean_nfe"] == pytest.approx((by["100%"]["mean_nfe"] + by["50%"]["mean_nfe"]) / 2)
    assert (tmp_path / "results.md").read_text().count("\n") == len(rows) + 2


def test_the_scored_answer_ends_at_the_first_eos():
    """Tokens a parallel sampler commits after the EOS are not part of the answer: a correct answer
    followed by EOS and a stray digit scores as correct (it would read '#### 207' otherwise)."""
    loaded = load_model("default")
    tok = loaded.tokenizer
    prompt, target = next((ex.prompt, ex.target) for ex in generate_examples("arith", "test", 5))
    ids = [*tok.encode(target, add_bos=False), tok.eos_id, tok.eos_id, *tok.encode("7", add_bos=False), tok.eos_id]
    assert loaded.decode(ids) == target
    from lrd_plugin.tasks import score

    assert score("arith", prompt, loaded.decode(ids))
    assert not score("arith", prompt, tok.decode(ids))  # every non-special token kept: a wrong answer


def test_bench_defaults_to_the_tasks_the_model_was_trained_on(tmp_path):
    """A model trained before a task joined the suite is benchmarked on what it learnt, unless told."""
    from lrd_plugin.cli import bench_tasks
    from lrd_plugin.models import build_default_random_model

    model, tokenizer = build_default_random_model(seed=1)
    model.save_pretrained(tmp_path)
    tokenizer.save(tmp_path)
    assert load_model(str(tmp_path)).trained_tasks is None
    assert bench_tasks(None, load_model(str(tmp_path))) == list(TASKS)  # no log: the whole suite
    (tmp_path / "train_log.json").write_text(json.dumps({"args": {"task_mix": "path:0.7,list:0.3"}}))
    loaded = load_model(str(tmp_path))
    assert loaded.trained_tasks == ("path", "list")
    assert bench_tasks(None, loaded) == ["list", "path"]  # in the suite's order
    assert bench_tasks(["latin5"], loaded) == ["latin5"]
    with pytest.raises(SystemExit, match="--tasks for this model must be among"):
        bench_tasks(["infill_line"], loaded)
    assert bench_tasks(None, load_model("default")) == [*TASKS[:6], "count"]  # the first six tasks and count
