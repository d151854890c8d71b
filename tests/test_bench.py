"""The side-by-side benchmark: records, same-run speed ratios, JSON/Markdown/PNG report, CLI."""

import json

import pytest
import torch

from lrd_plugin import LRDConfig, bench, generate
from lrd_plugin.cli import main
from lrd_plugin.loading import load_model
from lrd_plugin.tasks import generate_examples


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
    assert len(records) == 2 * 1 * 10
    for r in records:
        assert r.n == 2 and 0.0 <= r.accuracy <= 1.0 and r.latency_s > 0 and r.tokens_per_s > 0
        assert 1 <= r.mean_nfe <= 2 * (20 + 8)
    by_name = {r.sampler: r for r in records if r.task == "arith"}
    assert by_name["llada"].mean_nfe == 16 and by_name["llada"].phase1_steps_per_block == 0  # one token per step
    assert by_name["lrd w/o refinement"].phase1_steps_per_block == 0
    assert by_name["lrd w/o early stop"].early_stop_rate == 0
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
    assert names == ["accuracy_vs_nfe_arith.png", "accuracy_vs_nfe_sudoku.png", "results.json", "results.md"]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["meta"] == {"model": "test"} and len(data["results"]) == len(records)
    assert (tmp_path / "accuracy_vs_nfe_arith.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_command_quick(tmp_path, capsys):
    assert main(["bench", "--quick", "--n", "2", "--tasks", "list", "--out", str(tmp_path), "--set", "r_f=0.2"]) == 0
    out = capsys.readouterr().out
    assert "| list | 64 | 100% | lrd+fast-dllm-threshold |" in out
    meta = json.loads((tmp_path / "results.json").read_text())["meta"]
    assert meta["n_per_task"] == 2 and LRDConfig.from_dict(meta["lrd_config"]).r_f == 0.2


def test_kl_gated_samplers_run_alone_and_composed_with_fast_dllm():
    alone, composed = bench.kl_gated_samplers([0.8])
    assert alone.config.early_stop_rule == composed.config.early_stop_rule == "kl_gated"
    assert alone.config.early_stop_confidence == 0.8 and alone.cache == "none"
    assert (composed.config.policy, composed.config.threshold, composed.cache) == ("threshold", 0.9, "prefix")


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
