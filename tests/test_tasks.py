"""The task suite: determinism, disjoint splits, scoring round trips, one charset."""

from __future__ import annotations

import itertools

import pytest

from lrd_plugin.models import CharTokenizer
from lrd_plugin.tasks import (
    BIG_GRIDS,
    COUNT_CELLS,
    FLIP_BITS,
    HIDE_BITS,
    MARKER,
    TASK_CHARS,
    TASKS,
    VALIDITY_TASKS,
    _all_grids,
    _big_solutions,
    _is_big_completion,
    _latin_solutions,
    _latin_squares,
    _parse_path,
    _path_allowed,
    _path_counts,
    _rows,
    _solutions,
    extract_answer,
    generate_examples,
    reference_answer,
    score,
)

N = 300


@pytest.mark.parametrize("task", TASKS)
def test_same_seed_same_examples_other_seed_others(task: str) -> None:
    assert generate_examples(task, "train", 50, seed=3) == generate_examples(task, "train", 50, seed=3)
    assert generate_examples(task, "train", 50, seed=3) != generate_examples(task, "train", 50, seed=4)
    assert generate_examples(task, "test", 50, seed=3) != generate_examples(task, "train", 50, seed=3)


@pytest.mark.parametrize("task", TASKS)
def test_test_problems_never_appear_in_train(task: str) -> None:
    n_train = 600 if task in ("sudoku", "latin", "open_sudoku", *BIG_GRIDS) else 3000  # grids are slower to draw
    train = [ex for seed in range(2) for ex in generate_examples(task, "train", n_train, seed)]
    test = generate_examples(task, "test", N, seed=0)
    assert len({ex.prompt for ex in test}) == N  # no duplicate in the test set
    assert not {ex.prompt for ex in train} & {ex.prompt for ex in test}
    # Stricter for Sudoku: a test *solution* is never a training solution.
    if task == "sudoku":
        assert not {ex.target for ex in train} & {ex.target for ex in test}


@pytest.mark.parametrize("task", TASKS)
def test_reference_target_scores_true_and_corruptions_false(task: str) -> None:
    for prompt, target in generate_examples(task, "test", N, seed=1):
        assert score(task, prompt, target), (prompt, target)
        if task not in VALIDITY_TASKS:
            assert extract_answer(task, target) == reference_answer(task, prompt)
        assert not score(task, prompt, "")
        assert not score(task, prompt, target[: len(target) // 2])  # an unfinished answer
        answer = extract_answer(task, target)
        assert answer is not None
        last_digit = max(i for i, c in enumerate(target) if c.isdigit())
        wrong = "1" if target[last_digit] != "1" else "2"
        if task == "path":  # the last cell is often free: repeat its neighbour instead
            wrong = target[last_digit - 1]
        assert not score(task, prompt, target[:last_digit] + wrong + target[last_digit + 1 :]), (prompt, target)


def test_extractors_read_the_final_answer() -> None:
    assert extract_answer("arith", f"3+4=7,7-2=5 {MARKER} 5") == "5"
    assert extract_answer("arith", f"{MARKER} 1 {MARKER} 12") == "12"
    assert extract_answer("arith", f"3+4=7 {MARKER} 7x") is None
    assert extract_answer("arith", "3+4=7") is None
    assert extract_answer("list", f"{MARKER} [2, 1,3]") == "[2,1,3]"
    assert extract_answer("list", f"{MARKER} ") is None
    assert extract_answer("sudoku", "1234/3412/2143/4321") == "1234341221434321"
    assert extract_answer("sudoku", "1234/3412/2143/432") is None
    assert score("list", "x=[3,1,2]; print(x[::-1])", f"{MARKER} [2,1,3]")
    assert score("list", "x=[3,1,2,4]; print(sum(v for v in x if v%2==0))", f"2+4=6 {MARKER} 6")
    with pytest.raises(ValueError, match="task"):
        extract_answer("poetry", "x")


@pytest.mark.parametrize("task", TASKS)
def test_every_character_is_in_the_charset_and_prompts_are_short(task: str) -> None:
    tokenizer = CharTokenizer(TASK_CHARS)
    for split in ("train", "test"):
        for prompt, target in generate_examples(task, split, N, seed=2):
            assert set(prompt + target) <= set(TASK_CHARS)
            assert tokenizer.decode(tokenizer.encode(prompt + target)) == prompt + target
            assert len(prompt) <= 80
            assert len(target) <= 48


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="task"):
        generate_examples("poetry", "train", 1)
    with pytest.raises(ValueError, match="split"):
        generate_examples("arith", "valid", 1)
    with pytest.raises(ValueError, match="arith prompt"):
        reference_answer("arith", "What is love?")


def test_validity_tasks_accept_every_valid_answer_and_only_those() -> None:
    prompt = "latin 1.../..../..../...."
    completions = [g for g in _latin_squares() if g[0] == "1"]
    assert len(completions) == 144
    assert all(score("latin", prompt, "/".join(g[r : r + 4] for r in range(0, 16, 4))) for g in completions)
    assert not score("latin", prompt, "2143/1234/3412/4321")  # a Latin square, but not the given 1
    assert not score("latin", prompt, "1234/2143/3412/4312")  # column 3 and 4 repeat digits
    assert not score("latin", prompt, "1234/2143/3412/432")  # 15 cells
    prompt = "path 1..3 colours 3"
    answers = ["1213", "1323", "1313"]
    valid = {"".join(c) for c in itertools.product("123", repeat=4) if c[0] == "1" and c[3] == "3"}
    valid = {v for v in valid if all(a != b for a, b in itertools.pairwise(v))}
    assert valid == {"1213", "1313", "1323", "1233"} - {"1233"}
    assert all(score("path", prompt, answer) for answer in answers)
    assert sum(_path_counts(_path_allowed("1..3", 3))[0].values()) == len(valid)
    for wrong in ("1233", "2123", "1413", "121", "12133", "1 2 1 4", "1,2,1,3"):
        assert not score("path", prompt, wrong), wrong
    assert extract_answer("path", " 12 13") == "1213"
    prompt = "open sudoku 1.../..../..../...."
    grids = [g for g in _all_grids() if g[0] == "1"]
    assert len(grids) == 72
    assert all(score("open_sudoku", prompt, "/".join(g[r : r + 4] for r in range(0, 16, 4))) for g in grids)
    assert not score("open_sudoku", prompt, "1234/2143/3412/4321")  # a Latin square whose boxes repeat
    assert not score("open_sudoku", prompt, "2143/3412/1234/4321")  # a Sudoku, but not the given 1
    assert not score("open_sudoku", prompt, "1234/3412/2143/432")  # 15 cells


@pytest.mark.parametrize("task", VALIDITY_TASKS)
def test_validity_problems_have_several_answers_and_the_targets_vary(task: str) -> None:
    examples = generate_examples(task, "train", 200, seed=0)
    for prompt, _ in examples[:50]:
        if task in BIG_GRIDS:
            assert len(_big_solutions(task, prompt.split()[1].replace("/", ""), 2)) >= 2
        elif task == "latin":
            assert len(_latin_solutions(prompt.split()[1].replace("/", ""))) >= 2
        elif task == "open_sudoku":
            assert len(_solutions(prompt.split()[2].replace("/", ""))) >= 2
        elif task == "count":
            assert prompt.count(".") >= 11  # one 1 for at least 11 open cells
        elif task == "path":  # (flip: any of the bits may flip)
            assert sum(_path_counts(_path_allowed(*_parse_path(prompt)))[0].values()) >= 2
    # the target is drawn among the valid answers, not always the first one
    assert sum(extract_answer(task, target) != reference_answer(task, prompt) for prompt, target in examples) > 50


def test_malformed_validity_prompts_are_named() -> None:
    with pytest.raises(ValueError, match="not a latin prompt"):
        score("latin", "latin 12345/..../..../....", "1234/2143/3412/4321")
    with pytest.raises(ValueError, match="no completion"):
        score("latin", "latin 11../..../..../....", "1234/2143/3412/4321")
    with pytest.raises(ValueError, match="no answer"):
        score("path", "path 11 colours 3", "11")
    with pytest.raises(ValueError, match="not an open_sudoku prompt"):
        score("open_sudoku", "sudoku 1.../..../..../....", "1234/3412/2143/4321")
    with pytest.raises(ValueError, match="no solution"):
        score("open_sudoku", "open sudoku 11../..../..../....", "1234/3412/2143/4321")
    with pytest.raises(ValueError, match="not a latin5 prompt"):
        score("latin5", "latin5 1234/..../..../....", "1" * 25)
    with pytest.raises(ValueError, match="not a sudoku6 prompt"):
        score("sudoku6", "sudoku6 1234567/....../....../....../....../......", "1" * 36)
    with pytest.raises(ValueError, match="no completion"):
        score("latin5", "latin5 11.../...../...../...../.....", "1" * 25)
    with pytest.raises(ValueError, match="not a path prompt"):
        score("path", "path 1.2 colors 3", "132")


def test_count_flip_and_hide_accept_every_valid_answer_and_only_those() -> None:
    answers = {"".join(c) for c in itertools.product("012*", repeat=4)}
    assert {a for a in answers if score("count", "count 1..0 ones 2", a)} == {"1100", "1010"}
    assert {a for a in answers if score("count", "count .0.. ones 1", a)} == {"1000", "0010", "0001"}
    assert not score("count", "count .0.. ones 1", "00010")  # five cells
    assert {a for a in answers if score("flip", "flip 0110", a)} == {"1110", "0010", "0100", "0111"}
    assert not score("flip", "flip 0110", "0110")  # nothing flipped
    assert {a for a in answers if score("hide", "hide 0110", a)} == {"*110", "0*10", "01*0", "011*"}
    assert not score("hide", "hide 0110", "0110")  # nothing hidden
    assert not score("hide", "hide 0110", "0 1 1 * 0")  # five cells
    # the rare cell is drawn uniformly among the open ones, and every generated prompt has one left
    examples = generate_examples("count", "train", 2000, seed=0)
    assert all(p.endswith(" ones 1") and t.count("1") == 1 and p.count(".") >= 11 for p, t in examples)
    assert len({t.index("1") for _, t in examples}) == COUNT_CELLS
    flips = generate_examples("flip", "train", 2000, seed=0)
    flipped = {next(i for i, (a, b) in enumerate(zip(p.split()[1], t, strict=True)) if a != b) for p, t in flips}
    assert len(flipped) == FLIP_BITS
    hides = generate_examples("hide", "train", 2000, seed=0)
    assert all(t.count("*") == 1 and score("hide", p, t) for p, t in hides)
    assert len({t.index("*") for _, t in hides}) == HIDE_BITS
    # 200 held-out prompts exist for each (the test split holds no duplicate)
    assert {len(generate_examples(task, "test", 200)) for task in ("count", "flip", "hide")} == {200}


def test_malformed_count_flip_and_hide_prompts_are_named() -> None:
    with pytest.raises(ValueError, match="not a count prompt"):
        score("count", "count 12.. ones 2", "1100")
    with pytest.raises(ValueError, match="no answer"):
        score("count", "count 11.. ones 1", "1100")  # more ones given than asked for
    with pytest.raises(ValueError, match="no answer"):
        score("count", "count 1... ones 5", "1111")  # more ones than cells
    with pytest.raises(ValueError, match="not a flip prompt"):
        score("flip", "flip 0120", "0110")
    with pytest.raises(ValueError, match="not a hide prompt"):
        score("hide", "hide 01*0", "0110")


def test_big_grid_solver_counts_known_totals_and_matches_brute_force() -> None:
    # 161 280 Latin squares of order 5, 120 first rows: 1 344 share the first row 12345.
    assert len(_big_solutions("latin5", "12345" + "." * 20, 10**6)) == 1344
    # A 6x6 Sudoku with 5 blanks: every completion the search finds, and no other, by brute force.
    grid = _big_solutions("sudoku6", "." * 36, 1)[0]
    blanks = [0, 7, 14, 20, 27, 33]
    puzzle = "".join("." if i in blanks else c for i, c in enumerate(grid))
    brute = set()
    for digits in itertools.product("123456", repeat=len(blanks)):
        cells = list(puzzle)
        for i, d in zip(blanks, digits, strict=True):
            cells[i] = d
        if _is_big_completion("sudoku6", puzzle, "".join(cells)):
            brute.add("".join(cells))
    assert set(_big_solutions("sudoku6", puzzle, 10**6)) == brute and grid in brute
    assert score("sudoku6", f"sudoku6 {_rows(puzzle, 6)}", _rows(grid, 6))
    assert not _is_big_completion("sudoku6", "." * 36, "1" * 36)
    assert not _is_big_completion("latin5", "." * 25, "1234523451345124512351234".replace("5", "6"))
