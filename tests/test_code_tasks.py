"""Held-out code tasks: extraction invariants, scorers, the trivial baseline, decoding."""

from __future__ import annotations

import ast
import itertools

import pytest

pytest.importorskip("tokenizers")

from lrd_plugin import code_tasks as ct
from lrd_plugin.code_corpus import build_tokenizer, load_split, split_of_path
from lrd_plugin.models import BPETokenizer, random_model_for

N = 120


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    return build_tokenizer()


@pytest.fixture(scope="module")
def examples(tokenizer: BPETokenizer) -> dict[str, list[ct.CodeExample]]:
    return {task: ct.generate_examples(task, "test", N, tokenizer, seed=0) for task in ct.TASKS}


def test_functions_finds_bodies_after_signature_and_docstring() -> None:
    source = (
        "def one(): return 1\n"
        "class A:\n"
        "    @property\n"
        "    def two(self):\n"
        '        """Doc.\n\n        >>> A().two\n        2\n        """\n'
        "        # a comment\n"
        "        return 2\n"
        "def outer(x,\n          y):\n"
        "    def inner():\n"
        '        """Only a docstring."""\n'
        "    return x\n"
    )
    found = {f.qualname: f for f in ct.functions(source)}
    assert set(found) == {"A.two", "outer"}  # one-liners and docstring-only bodies have nothing to fill
    two = found["A.two"]
    assert (two.def_line, two.body_start, two.body_end, two.docstring, two.doctest) == (3, 10, 11, True, True)
    outer = found["outer"]
    assert (outer.def_line, outer.body_start, outer.body_end, outer.docstring) == (12, 14, 16, False)


@pytest.mark.parametrize("task", ct.TASKS)
def test_examples_reassemble_to_their_file_and_respect_the_budgets(
    task: str, tokenizer: BPETokenizer, examples: dict[str, list[ct.CodeExample]]
) -> None:
    chosen = examples[task]
    assert len(chosen) == N
    assert len({(e.path, e.start, e.end) for e in chosen}) == N  # no duplicate span
    for e in chosen:
        assert split_of_path(e.path) == "test"
        assert e.reassemble(e.span) == e.text
        ast.parse(e.text)
        assert e.text[e.start - len(e.prompt) : e.start] == e.prompt
        assert e.text[e.end : e.end + len(e.right)] == e.right
        assert e.span.endswith("\n") and (e.start == 0 or e.text[e.start - 1] == "\n")  # whole lines
        assert list(e.prompt_ids) == tokenizer.encode(e.prompt)
        assert list(e.span_ids) == tokenizer.encode(e.span, add_bos=False)
        together = tokenizer.encode(e.prompt + e.span + e.right)
        assert together == [*e.prompt_ids, *e.span_ids, *e.right_ids]
        assert len(e.prompt_ids) <= ct.LEFT_BUDGET and len(e.right_ids) <= ct.RIGHT_BUDGET
        assert ct.MIN_SPAN <= e.n_tokens <= ct.MAX_SPAN
        if task == "body":
            assert e.right == "" and e.gen_length == ct.BODY_GEN_LENGTH and e.n_tokens < e.gen_length
            name = e.function.rsplit(".", 1)[-1]
            assert f"def {name}(" in e.prompt  # the signature is in the prompt
        else:
            assert e.gen_length == e.n_tokens + len(e.right_ids)
            lines = e.span.count("\n")
            assert lines == 1 if task == "infill_line" else ct.BLOCK_LINES[0] <= lines <= ct.BLOCK_LINES[1]
            assert e.span.strip() and not e.span.strip().startswith("#")


def test_sizes_span_a_few_tokens_to_the_limit(examples: dict[str, list[ct.CodeExample]]) -> None:
    sizes = [e.n_tokens for task in ct.TASKS for e in examples[task]]
    assert min(sizes) <= 5 and max(sizes) > 128


def test_sampling_is_deterministic_by_seed(tokenizer: BPETokenizer, examples) -> None:
    for task in ct.TASKS:
        again = ct.generate_examples(task, "test", 20, tokenizer, seed=0)
        assert again == examples[task][:20]
        assert ct.generate_examples(task, "test", 20, tokenizer, seed=1) != again


def test_training_streams_use_training_modules_only(tokenizer: BPETokenizer) -> None:
    train_paths = {f.path for f in load_split("train")}
    for task in ct.TASKS:
        for e in itertools.islice(ct.iter_examples(task, "train", tokenizer, seed=0), 30):
            assert e.path in train_paths
    train_texts = [f.text for f in load_split("train")]
    for window in itertools.islice(ct.iter_windows("train", tokenizer, 128, seed=0), 20):
        assert len(window) == 128 and window[0] == tokenizer.bos_id
        body = [t for t in window[1:] if t != tokenizer.eos_id]
        text = tokenizer.decode(body)
        assert any(text in t for t in train_texts)


@pytest.mark.parametrize("task", ct.TASKS)
def test_gold_scores_perfect_and_wrong_answers_do_not(
    task: str, tokenizer: BPETokenizer, examples: dict[str, list[ct.CodeExample]]
) -> None:
    eos = tokenizer.eos_id
    for e in examples[task][:40]:
        gold = ct.score(e, e.answer_ids(eos), tokenizer)
        assert gold == {"exact": True, "parses": True, "runs": None, "edit_similarity": 1.0, "token_accuracy": 1.0}
        # One token changed: no longer exact, token accuracy drops by one position.
        wrong = e.answer_ids(eos)
        wrong[0] = 4 if wrong[0] != 4 else 5
        result = ct.score(e, wrong, tokenizer)
        assert not result["exact"] and result["token_accuracy"] < 1.0 and result["edit_similarity"] < 1.0
    e = examples[task][0]
    broken = ct.score_text(e, "    )\n" if task != "body" else "        return (\n")
    assert broken["parses"] is False and broken["exact"] is False
    if task == "body":  # an empty body after a docstring still parses: parse rate is not correctness
        assert ct.score_text(e, "") == {"exact": False, "parses": True, "runs": None, "edit_similarity": 0.0}
        stopped = ct.score(e, [eos] * e.gen_length, tokenizer)
        assert stopped["token_accuracy"] == 1 / (e.n_tokens + 1)  # only the EOS after the body is right


def test_edit_similarity_gives_partial_credit_where_token_accuracy_gives_none() -> None:
    assert ct.edit_similarity("x = 1\n", "x = 1\n") == 1.0
    assert ct.edit_similarity("abc", "xyz") == 0.0 and ct.edit_similarity("", "") == 1.0
    # 2 M / T: "return a" against "return b" shares 7 of 8 characters each.
    assert ct.edit_similarity("return a", "return b") == pytest.approx(14 / 16)
    # A line shifted by one leading space keeps almost all its credit.
    assert ct.edit_similarity(" if x:\n", "if x:\n") == pytest.approx(12 / 13)


def test_the_trivial_baseline_is_near_zero(tokenizer: BPETokenizer, examples) -> None:
    counts = ct.token_counts(tokenizer)
    token = counts.most_common(1)[0][0]
    assert tokenizer.token_text(token) == "\n"
    for task in ct.TASKS:
        scores = [ct.score(e, ct.trivial_fill(e, token, tokenizer.eos_id), tokenizer) for e in examples[task]]
        summary = ct.summarize(scores)
        assert summary["n"] == N and summary["exact"] == 0.0 and summary["token_accuracy"] < 0.3


def test_doctests_run_for_the_original_and_fail_for_a_wrong_body(tokenizer: BPETokenizer) -> None:
    candidates = [e for e in ct.generate_examples("body", "test", 1000, tokenizer, seed=0) if e.doctest]
    runnable = next((e for e in candidates if ct.gold_runs(e)), None)
    if runnable is None:
        pytest.skip("no held-out function with passing doctests in this Python's standard library")
    assert ct.score_text(runnable, runnable.span, run_doctests=True)["runs"] is True
    indent = runnable.span[: len(runnable.span) - len(runnable.span.lstrip())]
    wrong = ct.score_text(runnable, f"{indent}return None\n", run_doctests=True)
    assert wrong["parses"] is True and wrong["runs"] is False
    assert ct.score_text(runnable, runnable.span)["runs"] is None  # only when asked


def test_decode_examples_fills_only_the_masks(tokenizer: BPETokenizer, examples) -> None:
    from lrd_plugin import HFDenoiser

    model = random_model_for(tokenizer, d_model=32, n_heads=4, n_layers=1, mlp_hidden_size=64, seed=0).eval()
    denoiser = HFDenoiser(model, tokenizer.mask_id)
    bodies = ct.generate_examples("body", "test", 3, tokenizer, seed=0, gen_length=64)
    chosen = bodies + examples["infill_line"][:2] + examples["infill_block"][:1]
    canvases = ct.decode_examples(denoiser, chosen, tokenizer.mask_id, tokenizer.pad_id, batch_size=2)
    for e, canvas in zip(chosen, canvases, strict=True):
        assert len(canvas) == e.gen_length and tokenizer.mask_id not in canvas
        if e.task != "body":
            assert canvas[e.n_tokens :] == list(e.right_ids)  # the right context is given, not decoded
        result = ct.score(e, canvas, tokenizer)
        assert set(result) == {"exact", "parses", "runs", "edit_similarity", "token_accuracy"}
    with pytest.raises(ValueError, match="full-attention"):
        ct.decode_examples(
            HFDenoiser(model, tokenizer.mask_id, block_size=32), chosen[3:], tokenizer.mask_id, tokenizer.pad_id
        )


def test_task_counts_in_the_test_split() -> None:
    counts = {task: ct.count_sites(task) for task in ct.TASKS}
    assert counts["infill_line"] > 1000 and counts["infill_block"] > counts["infill_line"] and counts["body"] > 100
    with pytest.raises(ValueError, match="task"):
        ct.count_sites("poetry")
