"""The code model's side-by-side benchmark (`lrd bench --model code`) on the shipped code model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("tokenizers")

from lrd_plugin import bench, cli, code_bench
from lrd_plugin import code_tasks as ct
from lrd_plugin.config import LRDConfig
from lrd_plugin.loading import LoadedModel, load_model

LIMITS = {"left_budget": 96, "right_budget": 16}


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    return load_model("code")


@pytest.fixture(scope="module")
def lines(loaded: LoadedModel) -> list[ct.CodeExample]:
    return ct.generate_examples("infill_line", "test", 3, loaded.tokenizer, seed=1, max_span=12, **LIMITS)


def test_baselines_take_their_documented_forwards(loaded: LoadedModel, lines: list[ct.CodeExample]) -> None:
    """LLaDA's one-token-per-step baseline spends one forward per masked token, with or without the
    prefix cache (an infill is one block). Tokens may differ: on this uncertain model the cached
    keys' rounding can flip a near-tie."""
    samplers = [
        bench.Sampler("llada", LRDConfig.base(policy="low_confidence"), "none"),
        bench.Sampler("llada, prefix cache", LRDConfig.base(policy="low_confidence"), "prefix"),
    ]
    kl: list[list[float]] = [[] for _ in range(code_bench.KL_STEPS)]
    base, cached = (
        code_bench.run_code_sampler(loaded, s, lines, task="infill_line", size=12, block_length=32, batch_size=4, kl=kl)
        for s in samplers
    )
    assert base.mean_nfe == sum(e.n_tokens for e in lines) / len(lines)
    assert cached.mean_nfe == base.mean_nfe
    assert 0.0 <= base.scores["token_accuracy"] <= 1.0


def test_the_statistics_cover_every_masked_position(loaded: LoadedModel, lines: list[ct.CodeExample]) -> None:
    stats = code_bench.confidence_statistics(loaded, lines)
    assert stats["positions"] == sum(e.n_tokens for e in lines)
    assert 0.0 < stats["p10"] <= stats["median"] <= stats["p90"] <= 1.0
    trivial = code_bench.trivial_scores(loaded, lines)
    copied = [ct.copy_fill(e) for e in lines]
    assert trivial["copy the line above"]["exact"] == sum(
        c == e.span for c, e in zip(copied, lines, strict=True)
    ) / len(lines)
    assert trivial["most frequent token"]["exact"] == 0.0  # a line of code is never only newlines
    assert 0.0 <= trivial["copy the line above"]["token_accuracy"] < 1.0
    for example, copy in zip(lines, copied, strict=True):  # a copy that is the span scores every token
        if copy == example.span:
            assert code_bench.trivial_scores(loaded, [example])["copy the line above"]["token_accuracy"] == 1.0


def test_copy_fill_copies_the_lines_above_or_passes() -> None:
    text = "def f(x):\n    '''Doc.'''\n    y = x\n    y = x\n    return y\n"
    example = ct.CodeExample(
        task="infill_line",
        path="m.py",
        function="f",
        start=text.index("    y = x\n    return"),
        end=text.index("    return"),
        prompt=text[: text.index("    y = x\n    return")],
        right="",
        prompt_ids=(),
        span_ids=(1, 2, 3),
        right_ids=(),
        gen_length=3,
        doctest=False,
        text=text,
    )
    assert ct.copy_fill(example) == "    y = x\n"
    body = ct.CodeExample(
        task="body",
        path="m.py",
        function="f",
        start=text.index("    y = x"),
        end=len(text),
        prompt=text[: text.index("    y = x")],
        right="",
        prompt_ids=(),
        span_ids=(1, 2, 3),
        right_ids=(),
        gen_length=8,
        doctest=False,
        text=text,
    )
    assert ct.copy_fill(body) == "    pass\n" and ct.parses(body.reassemble(ct.copy_fill(body)))


def test_lrd_bench_on_the_code_model_writes_its_tables(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    argv = ["bench", "--model", "code", "--quick", "--n", "1", "--tasks", "infill_line", "--out", str(out)]
    assert cli.main(argv) == 0
    report = json.loads((out / "results.json").read_text())
    assert [r["sampler"] for r in report["results"]] == [s.name for s in bench.code_samplers()]
    assert {r["gen_length"] for r in report["results"]} == {16}  # quick: spans of at most 16 tokens
    assert set(report["statistics"]["confidence"]) == {"infill_line/16"}
    assert all(0.0 <= r["scores"]["edit_similarity"] <= 1.0 for r in report["results"])
    text = capsys.readouterr().out
    assert "copy the line above" in text and "median top-1" in text and "edit sim %" in text


def test_slices_of_the_code_bench_merge_into_one_table(tmp_path: Path) -> None:
    """The full run goes in slices on a slow CPU; the merged table holds every slice's rows and statistics."""
    from benchmarks import merge_code_results as merge

    for task in ("infill_line", "infill_block"):
        argv = ["bench", "--model", "code", "--quick", "--n", "1", "--tasks", task, "--out", str(tmp_path / task)]
        assert cli.main(argv) == 0
    slices = [tmp_path / "infill_line", tmp_path / "infill_block"]
    merge.main([*map(str, slices), "--out", str(tmp_path / "merged")])
    merged = json.loads((tmp_path / "merged" / "results.json").read_text())
    parts = [json.loads((s / "results.json").read_text()) for s in slices]
    assert merged["results"] == parts[0]["results"] + parts[1]["results"]
    assert set(merged["statistics"]["confidence"]) == {"infill_line/16", "infill_block/16"}
    assert set(merged["meta"]["slices"]) == {"infill_line", "infill_block"}
    text = (tmp_path / "merged" / "results.md").read_text()
    assert "- `infill_block`: `lrd bench --model code --quick --n 1 --tasks infill_block" in text
    with pytest.raises(ValueError, match="repeats"):
        merge.merge([slices[0], slices[0]])


def test_shards_of_one_size_pool_into_the_rows_of_one_run(tmp_path: Path) -> None:
    """Two shards (``--offset``) merge into what one run over both examples scores (an infill decodes
    alone, so its tokens do not depend on the batch); the speed ratios come from the pooled wall times."""
    from benchmarks import merge_code_results as merge

    base = ["bench", "--model", "code", "--quick", "--tasks", "infill_line"]
    for name, extra in {"whole": ["--n", "2"], "first": ["--n", "1"], "second": ["--n", "1", "--offset", "1"]}.items():
        assert cli.main([*base, *extra, "--out", str(tmp_path / name)]) == 0
    whole = json.loads((tmp_path / "whole" / "results.json").read_text())
    merged = merge.merge([tmp_path / "first", tmp_path / "second"])
    assert [r["sampler"] for r in merged["results"]] == [r["sampler"] for r in whole["results"]]
    llada = merged["results"][0]
    for m, w in zip(merged["results"], whole["results"], strict=True):
        assert m["n"] == 2
        assert (m["accuracy"], m["mean_nfe"]) == pytest.approx((w["accuracy"], w["mean_nfe"]))
        for key in ("parses", "edit_similarity", "token_accuracy"):
            assert m["scores"][key] == pytest.approx(w["scores"][key])
        assert m["time_speedup_vs_llada"] == pytest.approx(llada["latency_s"] / m["latency_s"])
    for filler, scores in whole["statistics"]["trivial"]["infill_line/16"].items():
        pooled = merged["statistics"]["trivial"]["infill_line/16"][filler]
        assert pooled["n"] == 2
        assert pooled["edit_similarity"] == pytest.approx(scores["edit_similarity"])
    assert set(merged["statistics"]["confidence"]) == {"infill_line/16 [0:1]", "infill_line/16 [1:2]"}
    with pytest.raises(ValueError, match="repeats examples"):
        merge.merge([tmp_path / "first", tmp_path / "whole"])
    other = tmp_path / "other"
    other.mkdir()
    data = json.loads((tmp_path / "second" / "results.json").read_text())
    data["meta"]["block_length"] = 16
    (other / "results.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="differs"):
        merge.merge([tmp_path / "first", other])


def test_the_offset_is_refused_outside_the_code_model(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--offset applies to the code model"):
        cli.main(["bench", "--quick", "--offset", "1", "--out", str(tmp_path)])


def test_the_code_offset_skips_the_first_examples(loaded: LoadedModel) -> None:
    four = ct.generate_examples("infill_line", "test", 4, loaded.tokenizer, seed=1, max_span=12, **LIMITS)
    last = ct.generate_examples("infill_line", "test", 2, loaded.tokenizer, seed=1, offset=2, max_span=12, **LIMITS)
    assert [e.prompt_ids for e in last] == [e.prompt_ids for e in four[2:]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "arith"], "--tasks for this model must be among"),
        (["--mask-ratios", "0.5"], "--mask-ratios applies to the task suite"),
    ],
)
def test_bad_code_bench_settings_are_refused(argv: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=message):
        cli.main(["bench", "--model", "code", "--quick", "--out", str(tmp_path), *argv])
