"""benchmarks/gpu_check.py (issue 20's one-call GPU check) at tiny dimensions on the CPU.

The GPU session that runs it at LLaDA-8B dimensions gets one call; these tests make sure that call
has working code: the grid's rows are complete and positive, the plugin with LRD's features off
commits what a plain engine step commits on the same logits, the budget guard and the missing-wheels
path degrade to recorded skips, and the files are written. No timing is asserted.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lrd_plugin import LRDConfig, LRDSampler
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


gpu_check = load_script(SCRIPT, "gpu_check")
TINY = gpu_check.DIMS["tiny"]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return gpu_check.build_model(TINY, CPU, seed=0)


def test_model_is_built_in_place_with_the_requested_shape(model: torch.nn.Module) -> None:
    cfg = model.config
    assert (cfg.d_model, cfg.n_layers, cfg.vocab_size) == (64, 2, 320)
    assert all(p.device.type == "cpu" and p.dtype == TINY.dtype for p in model.parameters())
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the mask token's output row is zero: a random model never proposes it
    assert not model.transformer.ff_out.weight[cfg.mask_token_id].any()
    ids = torch.randint(0, cfg.mask_token_id, (2, 24))
    with torch.no_grad():
        assert not (model(input_ids=ids).logits.argmax(-1) == cfg.mask_token_id).any()


def test_the_8b_dims_are_llada_8b() -> None:
    cfg = gpu_check.LLaDAConfig(**gpu_check.DIMS["8b"].model)
    assert (cfg.vocab_size, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.mlp_hidden_size) == (
        126464,
        4096,
        32,
        32,
        12288,
    )
    assert gpu_check.DIMS["8b"].dtype == torch.bfloat16 and gpu_check.DIMS["8b"].block == 32
    grid = gpu_check.settings(gpu_check.DIMS["8b"], (1, 8, 32), (256, 1024, 2048))
    assert len(grid) == 18 and {s.cache for s in grid} == {"prefix", "dual"}
    assert grid[0].batch * grid[0].context <= grid[-1].batch * grid[-1].context  # cheap settings first


def test_step_cost_rows(model: torch.nn.Module) -> None:
    budget = gpu_check.Budget(60)
    rows = gpu_check.run_step_costs(model, TINY, budget, until=60, batches=(2,), contexts=(32, 64))
    assert [(r["cache"], r["context"]) for r in rows] == [
        ("dual", 32),
        ("prefix", 32),
        ("dual", 64),
        ("prefix", 64),
    ]
    for r in rows:
        assert "skipped" not in r
        answer = min(TINY.answer_cap, r["context"] // 2)
        assert (r["answer"], r["prompt"], r["block"]) == (answer, r["context"] - answer, TINY.block)
        assert r["query"] == r["lrd_window"] == (answer if r["cache"] == "prefix" else TINY.block)
        for name in ("forward", "engine_step", "off_step", "lrd_step"):
            assert r[name]["ms"] > 0 and 3 <= r[name]["repeats"] <= TINY.max_repeats
            assert r[f"{name}_peak_gib"] is None  # a CUDA-only reading
            assert isinstance(r[f"{name}_syncs"], int) and r[f"{name}_syncs"] >= 0
        assert r["engine_step_syncs"] == 0  # the reference step is sync-free, so the counter is not noise
        cached = r["prompt"] if r["cache"] == "prefix" else r["context"] - r["block"]
        assert r["kv_cache_gib"] * gpu_check.GIB == 2 * 2 * 2 * 4 * cached * 16 * 4  # K, V x layers x B x heads
        assert r["lrd_state_gib"] > 0
        assert r["extra_over_forward"] == pytest.approx(
            (r["lrd_step"]["ms"] - r["engine_step"]["ms"]) / r["forward"]["ms"]
        )
        assert 1 <= r["engine_commits"] <= 2 * TINY.block
        assert r["off_matches_engine"] is True
    assert any(r["engine_commits"] > 2 for r in rows), "no step committed several tokens: the check is weak"


def test_engine_step_is_the_plugin_with_lrd_off_on_confident_logits() -> None:
    """The engine step the cost is compared against commits exactly what LRDSampler with every LRD
    feature off commits (threshold rule, mask token excluded), also when several positions pass."""
    generator = torch.Generator().manual_seed(3)
    vocab, mask_id, block = 50, 49, 8
    table = torch.randn(vocab, 16, generator=generator)
    sampler = LRDSampler(LRDConfig.base(policy="threshold", threshold=0.9), table, mask_id)
    for trial in range(20):
        logits = torch.randn(3, block, vocab, generator=generator) * (1 + trial)
        logits[..., mask_id] += 30.0 * (trial % 2)  # the mask token is the raw favourite half the time
        tokens = torch.full((3, block), mask_id)
        tokens[0, :3] = 5  # some positions already committed
        expected, commit = gpu_check.engine_step(logits, tokens, mask_id, 0.9)
        state = sampler.init_block(tokens, block)
        assert torch.equal(sampler.step(state, logits), commit)
        assert torch.equal(state.tokens, expected)
        assert not (expected[commit] == mask_id).any()
        assert (commit.sum(-1) >= 1).all()


def test_sync_points_are_counted_on_the_cpu() -> None:
    """The CPU stand-in for CUDA's sync debug mode sees what would block a GPU's host."""
    x = torch.arange(6.0)
    assert gpu_check.sync_counter_works(CPU)
    assert gpu_check.host_syncs(lambda: (x * 2).sum(), CPU) == 0
    assert gpu_check.host_syncs(lambda: bool((x > 2).any()), CPU) == 1
    assert gpu_check.host_syncs(lambda: (x.tolist(), x[x > 2], x.nonzero(), int(x[1])), CPU) == 4


def test_budget_guard_records_skips(model: torch.nn.Module) -> None:
    rows = gpu_check.run_step_costs(model, TINY, gpu_check.Budget(60), until=0, batches=(1,), contexts=(32,))
    assert rows == [
        {"cache": "dual", "batch": 1, "context": 32, "skipped": "time budget"},
        {"cache": "prefix", "batch": 1, "context": 32, "skipped": "time budget"},
    ]


def test_command_writes_json_and_markdown_and_skips_part_b_without_wheels(tmp_path: Path) -> None:
    fake = tmp_path / "fast-dllm"
    (fake / "v1" / "llada").mkdir(parents=True)
    (fake / "v1" / "llada" / "generate.py").write_text("")
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    out = tmp_path / "out"
    args = ["--out", str(out), "--dims", "tiny", "--device", "cpu", "--batches", "1", "--contexts", "32"]
    report = gpu_check.main([*args, "--wheels", str(empty), "--fast-dllm", str(fake)])
    saved = json.loads((out / "gpu_check.json").read_text())
    assert saved["meta"]["parameters"] == report["meta"]["parameters"] == 123200
    assert saved["meta"]["dims"] == "tiny" and saved["meta"]["device"] == "cpu"
    assert [r["cache"] for r in saved["step_cost"]] == ["dual", "prefix"]
    assert all(r["off_matches_engine"] for r in saved["step_cost"])
    reason = saved["upstream"]["skipped"]
    if gpu_check._transformers_major() != 4:  # an environment with transformers 4 needs no wheels
        assert "no wheels in" in reason and "gpu_check_wheels.sh" in reason
    text = (out / "gpu_check.md").read_text()
    assert "| cache | batch | context |" in text and "| prefix | 1 | 32 | 16 |" in text
    assert "Skipped: " in text and "LRD extra / forward: at most" in text


def test_no_checkout_is_a_recorded_skip(tmp_path: Path) -> None:
    report = gpu_check.main(
        ["--out", str(tmp_path), "--dims", "tiny", "--device", "cpu", "--parts", "b", "--fast-dllm", str(tmp_path)]
    )
    assert report["step_cost"] == []
    assert "no Fast-dLLM v1 checkout" in report["upstream"]["skipped"]


@pytest.mark.skipif(
    not list(gpu_check.WHEELS.glob("*.whl")) or gpu_check.find_llada_dir(None) is None,
    reason="no carried wheels or Fast-dLLM checkout: run benchmarks/gpu_check_wheels.sh first",
)
def test_upstream_loops_run_from_the_carried_wheels(tmp_path: Path) -> None:
    """Part (b) in a fresh process (it must import transformers 4.x from the wheels): upstream's two
    cached loops, three ways each; the plugin with LRD off decodes upstream's tokens and NFE."""
    command = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--dims", "tiny", "--device", "cpu"]
    subprocess.run([*command, "--parts", "b", "--budget-s", "60"], check=True, capture_output=True, timeout=300)
    upstream = json.loads((tmp_path / "gpu_check.json").read_text())["upstream"]
    assert upstream["transformers"].startswith("4.")
    assert [loop["function"] for loop in upstream["loops"]] == [
        "generate_with_prefix_cache",
        "generate_with_dual_cache",
    ]
    for loop in upstream["loops"]:
        assert loop["off_matches_engine"] is True and loop["lrd_leaves_no_mask"] is True
        assert set(loop["variants"]) == {"engine", "plugin_lrd_off", "lrd_default"}
        for variant in loop["variants"].values():
            assert variant["nfe"] >= TINY.loop_gen // TINY.block and variant["ms_per_forward"] > 0
            assert variant["repeats"] >= 1 and variant["syncs_per_forward"] >= 0


def test_off_the_cpu_an_lrd_step_reads_nothing_back_but_the_logits_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an accelerator (`host_reads_are_free` false) the default step with an engine's rule keeps
    fixed shapes instead of trimming by what it would read: one host read (the bad-logits check) per
    step, and the same commits, tokens and next-forward inputs as the CPU path."""
    from lrd_plugin import mixture

    generator = torch.Generator().manual_seed(5)
    vocab, mask_id, block = 50, 49, 8
    table = torch.randn(vocab, 16, generator=generator)

    def select(logits: torch.Tensor, candidates: torch.Tensor, tokens: torch.Tensor, _step: torch.Tensor):
        return gpu_check.engine_step(logits, torch.where(candidates, mask_id, tokens), mask_id, 0.9)

    def run() -> tuple[list[torch.Tensor], list[int]]:
        sampler = LRDSampler(LRDConfig(policy="threshold", threshold=0.9, early_stop_scope="block"), table, mask_id)
        state = sampler.init_block(torch.full((3, block), mask_id), block)
        seen, syncs, step = [], [], 0
        while not state.done:
            logits = torch.randn(3, block, vocab, generator=torch.Generator().manual_seed(step)) * 3
            step_once = functools.partial(sampler.step, state, logits, select=select)
            syncs.append(gpu_check.host_syncs(lambda: seen.append(step_once()), CPU))  # noqa: B023
            seen.append(state.tokens.clone())
            if not state.done:  # what a next forward reads: the CPU forms no mixture where every open
                # position is below the mixture floor, the accelerator path one whose alpha is 0 there
                seen.append(sampler.block_inputs(state, table[state.tokens]))
            step += 1
        return seen, syncs

    on_cpu, cpu_syncs = run()
    monkeypatch.setattr(mixture, "host_reads_are_free", lambda _t: False)
    off_cpu, accelerator_syncs = run()
    assert len(on_cpu) == len(off_cpu) >= 5  # at least two steps
    for a, b in zip(on_cpu, off_cpu, strict=True):
        torch.testing.assert_close(a, b)
    assert accelerator_syncs == [1] * len(accelerator_syncs)
    assert min(cpu_syncs) >= 2  # the CPU path trims the mixture by what it reads
