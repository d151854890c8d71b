"""A seeded, scored task suite for small masked diffusion LMs, in the spirit of the LRD paper's benchmarks.

Eleven tasks, each a stream of (prompt, target) text pairs. Three have one right answer, scored by
exact match:

* ``arith``: GSM8K-like word problems, 2-3 operations on single-digit quantities (intermediate
  results up to 81). The target shows the working, one operation at a time, then the answer after
  the marker: ``8+7=15,15-5=10 #### 10``.
* ``list``: HumanEval/MBPP-like program output on a short list of digits (reverse, sort, rotate,
  every other element, sum of the evens): ``x=[3,1,2]; print(x[::-1])`` -> ``#### [2,1,3]``.
* ``sudoku``: a 4x4 Sudoku with blanks (``.``) and a unique solution, where the order in which cells
  are filled matters: ``sudoku 1.3./....`` -> ``1234/3412/2143/4321``.

Eight have many valid answers under global constraints, so each position alone has several plausible
tokens and two positions committed in the same forward can contradict each other. They are scored by
validity, not against a stored answer, and the training target is a valid answer drawn at random:

* ``latin``: complete a 4x4 Latin square (each row and column holds 1-4 once) from a few givens; every
  puzzle has at least two completions: ``latin 1.../..../.3../....`` -> ``1234/2143/4312/3421``.
* ``path``: colour a path of 10 cells with colours 1..c so that neighbours differ, keeping a few
  given cells; at least two colourings exist: ``path 1..3..2... colours 3`` -> ``1213132121``.
* ``open_sudoku``: complete a 4x4 Sudoku (rows, columns and 2x2 boxes hold 1-4 once) from so few
  givens that it has at least two solutions: ``open sudoku 1.../..../..2./....`` -> any valid grid.
* ``latin5`` and ``sudoku6``: the same on larger grids, a 5x5 Latin square and a 6x6 Sudoku (2x3
  boxes), with 8-12 givens: more open cells, so more of those committed in one forward can clash.
* ``count``: a 16-cell binary string with exactly one 1, keeping 0-5 given zeros:
  ``count ..0.....0....... ones 1`` -> ``0000000000001000``.
* ``flip``: a 16-bit string with exactly one bit flipped: ``flip 0110100111010010`` ->
  ``0110100101010010``.
* ``hide``: a 16-bit string with exactly one bit hidden behind ``*``: ``hide 0110100111010010`` ->
  ``0110100*11010010``.

  In these three the constraint is global and its rare token is spread thin: with one 1 for 11 to 16
  open cells (one flip or one ``*`` for 16 bits), every cell alone is 0 (its copy) with probability at
  least 10/11 > 0.9, so a threshold rule commits them all in one forward and the answer breaks the
  constraint, while a decoder that commits one cell at a time sees the common tokens pile up and
  places the rare one last.

Train and test are disjoint by construction: every problem has a canonical form (its numbers and
structure, without names or objects; for Sudoku the *solution grid*, so no test grid is ever seen
in training) and a hash of that form decides the split. ``score`` recomputes the reference answer
from the prompt, so a generated text is judged by the problem it answers, not by a stored string.
Pure Python, deterministic from the seed.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

TASKS = ("arith", "list", "sudoku", "latin", "path", "open_sudoku", "latin5", "sudoku6", "count", "flip", "hide")
# many valid answers: scored by the constraints
VALIDITY_TASKS = ("latin", "path", "open_sudoku", "latin5", "sudoku6", "count", "flip", "hide")
SPLITS = ("train", "test")
MARKER = "####"
TEST_BUCKETS = 10  # one hash bucket in ten is the test split
TASK_CHARS = string.ascii_letters + string.digits + " .,?=+-*/#[]():;%"
# the tasks answered by a row of cells, and what the row may hold
CELL_PATTERNS = {"path": r"\d+", "count": r"\d+", "flip": r"\d+", "hide": r"[\d*]+"}


class Example(NamedTuple):
    prompt: str
    target: str


def generate_examples(task: str, split: str, n: int, seed: int = 0) -> list[Example]:
    """The first ``n`` examples of ``task`` in ``split``; the test split holds no duplicate prompt."""
    return list(itertools.islice(iter_examples(task, split, seed), n))


def iter_examples(task: str, split: str, seed: int = 0) -> Iterator[Example]:
    """An endless, seeded stream of examples (a training loop draws from it step by step)."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    # A string seed is hashed with SHA-512 by `random`, so streams are stable across runs.
    rng = random.Random(f"{task}/{split}/{seed}")
    draw = _DRAW[task]
    seen: set[str] = set()
    while True:
        canonical, example = draw(rng, split)
        if split_of(canonical) != split:
            continue
        if split == "test":
            if example.prompt in seen:
                continue
            seen.add(example.prompt)
        yield example


def split_of(canonical: tuple) -> str:
    """The split a canonical problem belongs to, from a stable hash (not Python's salted ``hash``)."""
    digest = hashlib.sha256(repr(canonical).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_BUCKETS == 0 else "train"


def extract_answer(task: str, text: str) -> str | None:
    """The scored part of a text, or None when it is missing or malformed.

    arith: the integer after the last ``####``; list: what follows the last ``####`` (spaces
    dropped); the grid tasks: the text's digits, which must fill the grid exactly (16, 25 or 36);
    path, count, flip: the text without spaces, which must be digits only; hide: the same, where
    ``*`` may stand for a digit.
    """
    if task in GRID_CELLS:
        digits = "".join(c for c in text if c.isdigit())
        return digits if len(digits) == GRID_CELLS[task] else None
    if task in CELL_PATTERNS:
        compact = text.replace(" ", "")
        return compact if re.fullmatch(CELL_PATTERNS[task], compact) else None
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    if MARKER not in text:
        return None
    tail = text.rsplit(MARKER, 1)[1].replace(" ", "")
    if task == "arith":
        return tail if re.fullmatch(r"-?\d+", tail) else None
    return tail or None


def reference_answer(task: str, prompt: str) -> str:
    """The correct answer, solved from the prompt itself (for a validity task: one valid answer)."""
    if task == "latin":
        return _latin_solutions(_parse_latin(prompt))[0]
    if task == "open_sudoku":
        return _solutions(_parse_open_sudoku(prompt))[0]
    if task in BIG_GRIDS:
        return _big_solutions(task, _parse_big(task, prompt), limit=1)[0]
    if task == "path":
        puzzle, colours = _parse_path(prompt)
        return _path_sample(_path_allowed(puzzle, colours), random.Random(0))
    if task == "count":
        return _count_sample(*_parse_count(prompt), random.Random(0))
    if task == "flip":
        return _flip_sample(_parse_bits("flip", prompt), random.Random(0))
    if task == "hide":
        return _hide_sample(_parse_bits("hide", prompt), random.Random(0))
    if task == "arith":
        return str(_solve_arith(prompt)[-1])
    if task == "list":
        return _solve_list(prompt)[1]
    if task == "sudoku":
        return _solve_sudoku(prompt).replace("/", "")
    raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")


def score(task: str, prompt: str, generated_text: str) -> bool:
    """Exact match of the extracted answer against the answer solved from the prompt; for a validity
    task, whether the extracted answer meets every constraint of the prompt."""
    answer = extract_answer(task, generated_text)
    if answer is None:
        return False
    if task == "latin":
        return _is_latin_completion(_parse_latin(prompt), answer)
    if task == "open_sudoku":
        return _is_sudoku_completion(_parse_open_sudoku(prompt), answer)
    if task in BIG_GRIDS:
        return _is_big_completion(task, _parse_big(task, prompt), answer)
    if task == "path":
        return _is_path_answer(*_parse_path(prompt), answer)
    if task == "count":
        return _is_count_answer(*_parse_count(prompt), answer)
    if task == "flip":
        return _is_flip_answer(_parse_bits("flip", prompt), answer)
    if task == "hide":
        return _is_hide_answer(_parse_bits("hide", prompt), answer)
    return answer == reference_answer(task, prompt)


# --- arith ---------------------------------------------------------------------------------------

# Names of 3 letters, objects of 4 and single-digit quantities give every template a fixed layout:
# each number sits at a fixed offset from the answer, so a small model trained for half an hour on a
# CPU can learn to read it (with free-length text it did not learn to find the numbers in that time).
NAMES = ("Ann", "Bob", "Cal", "Dee", "Eve", "Fay", "Gus", "Hal", "Ivy", "Jon", "Kim", "Liz", "Max", "Ned", "Pam")
OBJECTS = ("pens", "cups", "eggs", "toys", "hats", "nuts", "keys", "pins", "jars", "mugs", "caps", "rugs")
MULTIPLIERS = {2: "doubles", 3: "triples"}


@dataclass(frozen=True)
class _Template:
    """A word problem: ``text`` is a ``str.format`` pattern over a name ``n``, an object ``o`` and
    number slots (``k`` is a multiplier word); the working applies ``ops`` left to right to the
    slot values in their order of appearance, which is also the order ``draw`` returns them in."""

    text: str
    ops: str
    draw: Callable[[random.Random], tuple[int, ...]]

    @property
    def slots(self) -> tuple[str, ...]:
        names = [name for _, name, _, _ in string.Formatter().parse(self.text) if name not in (None, "n", "o")]
        return tuple(dict.fromkeys(names))


def _draw_add_sub(rng: random.Random) -> tuple[int, ...]:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return a, b, rng.randint(1, min(a + b - 1, 9))


def _draw_mul_sub(rng: random.Random) -> tuple[int, ...]:
    a, b = rng.randint(2, 9), rng.randint(2, 9)
    return a, b, rng.randint(1, min(a * b - 1, 9))


def _draw_sub_add(rng: random.Random) -> tuple[int, ...]:
    a = rng.randint(3, 9)
    return a, rng.randint(1, a - 1), rng.randint(2, 9)


def _draw_mul_add(rng: random.Random) -> tuple[int, ...]:
    return rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 9)


def _draw_add_mul_sub(rng: random.Random) -> tuple[int, ...]:
    a, b, k = rng.randint(2, 9), rng.randint(1, 9), rng.choice(sorted(MULTIPLIERS))
    return a, b, k, rng.randint(1, min((a + b) * k - 1, 9))


def _draw_sub_add2(rng: random.Random) -> tuple[int, ...]:
    a = rng.randint(3, 9)
    return a, rng.randint(1, a - 1), rng.randint(2, 9), rng.randint(2, 9)


TEMPLATES = (
    _Template("{n} has {a} {o}, buys {b} more and gives away {c}. How many {o} now?", "+-", _draw_add_sub),
    _Template("{n} has {a} bags with {b} {o} each and loses {c}. How many {o} are left?", "*-", _draw_mul_sub),
    _Template("{n} had {a} {o}, lost {b}, then found {c}. How many {o} now?", "-+", _draw_sub_add),
    _Template("A box holds {a} {o}. {n} buys {b} boxes and {c} more {o}. How many {o} in all?", "*+", _draw_mul_add),
    _Template("{n} has {a} {o}, gets {b} more, {k} them and gives away {c}. How many now?", "+*-", _draw_add_mul_sub),
    _Template("{n} has {a} {o}, sells {b}, buys {c} and then gets {d} more. How many {o} now?", "-++", _draw_sub_add2),
)


def _apply(op: str, x: int, y: int) -> int:
    return x + y if op == "+" else x - y if op == "-" else x * y


def _working(values: tuple[int, ...], ops: str) -> tuple[str, int]:
    """The target's working (``a+b=x,x-c=y``) and the final value."""
    steps, x = [], values[0]
    for op, y in zip(ops, values[1:], strict=True):
        result = _apply(op, x, y)
        steps.append(f"{x}{op}{y}={result}")
        x = result
    return ",".join(steps), x


def _draw_arith(rng: random.Random, split: str) -> tuple[tuple, Example]:
    index = rng.randrange(len(TEMPLATES))
    template = TEMPLATES[index]
    values = template.draw(rng)
    fields = dict(zip(template.slots, values, strict=True))
    if "k" in fields:
        fields["k"] = MULTIPLIERS[fields["k"]]
    prompt = template.text.format(n=rng.choice(NAMES), o=rng.choice(OBJECTS), **fields)
    working, answer = _working(values, template.ops)
    return ("arith", index, values), Example(prompt, f"{working} {MARKER} {answer}")


@functools.cache
def _template_regex(text: str) -> re.Pattern[str]:
    """Invert a template: literal text escaped, a repeated field matched as a back-reference."""
    groups = {"n": r"[A-Z][a-z]+", "o": r"[a-z]+", "k": "|".join(MULTIPLIERS.values())}
    pattern, seen = [], set()
    for literal, name, _, _ in string.Formatter().parse(text):
        pattern.append(re.escape(literal))
        if name is None:
            continue
        pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>{groups.get(name, r'[0-9]+')})")
        seen.add(name)
    return re.compile("".join(pattern))


def _solve_arith(prompt: str) -> tuple[int, ...]:
    """The slot values and the answer of an arith prompt (ValueError if no template matches)."""
    words = {word: k for k, word in MULTIPLIERS.items()}
    for template in TEMPLATES:
        match = _template_regex(template.text).fullmatch(prompt)
        if match:
            values = tuple(words[match[s]] if s == "k" else int(match[s]) for s in template.slots)
            return (*values, _working(values, template.ops)[1])
    raise ValueError(f"not an arith prompt: {prompt!r}")


# --- list ----------------------------------------------------------------------------------------

LIST_PROGRAMS = {
    "print(x[::-1])": lambda x: x[::-1],
    "print(sorted(x))": sorted,
    "print(x[1:]+x[:1])": lambda x: x[1:] + x[:1],
    "print(x[::2])": lambda x: x[::2],
    "print(sum(v for v in x if v%2==0))": None,  # a number, shown with running-sum working
}


def _show(values: list[int]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


def _list_target(program: str, x: list[int]) -> tuple[str, str]:
    """(working, answer); the working is the running sum for the sum of evens, else empty."""
    function = LIST_PROGRAMS[program]
    if function is not None:
        return "", _show(function(x))
    evens = [v for v in x if v % 2 == 0]
    if len(evens) < 2:
        return "", str(sum(evens))
    working, total = _working(tuple(evens), "+" * (len(evens) - 1))
    return working, str(total)


def _draw_list(rng: random.Random, split: str) -> tuple[tuple, Example]:
    program = rng.choice(list(LIST_PROGRAMS))
    x = [rng.randint(0, 9) for _ in range(rng.randint(3, 6))]
    working, answer = _list_target(program, x)
    target = f"{working} {MARKER} {answer}" if working else f"{MARKER} {answer}"
    return ("list", program, tuple(x)), Example(f"x={_show(x)}; {program}", target)


def _solve_list(prompt: str) -> tuple[str, str]:
    match = re.fullmatch(r"x=\[([0-9,]*)\]; (.+)", prompt)
    if not match or match[2] not in LIST_PROGRAMS:
        raise ValueError(f"not a list prompt: {prompt!r}")
    return _list_target(match[2], [int(v) for v in match[1].split(",") if v])


# --- sudoku --------------------------------------------------------------------------------------

SUDOKU_BLANKS = (6, 10)  # inclusive range of blanked cells


@functools.cache
def _all_grids() -> tuple[str, ...]:
    """All 288 solved 4x4 Sudoku grids as 16-digit strings, by backtracking."""
    grids: list[str] = []

    def fill(cells: list[int]) -> None:
        i = len(cells)
        if i == 16:
            grids.append("".join(map(str, cells)))
            return
        for digit in range(1, 5):
            if all(cells[j] != digit for j in _PEERS[i] if j < i):
                fill([*cells, digit])

    fill([])
    return tuple(grids)


def _peers(i: int) -> tuple[int, ...]:
    row, col = divmod(i, 4)
    box = (row // 2 * 2, col // 2 * 2)
    return tuple(
        j for j in range(16) if j != i and (j // 4 == row or j % 4 == col or (j // 4 // 2 * 2, j % 4 // 2 * 2) == box)
    )


_PEERS = tuple(_peers(i) for i in range(16))


@functools.cache
def _grids_of(split: str) -> tuple[str, ...]:
    return tuple(g for g in _all_grids() if split_of(("sudoku", g)) == split)


def _solutions(puzzle: str) -> list[str]:
    """Every grid consistent with the givens of a 16-character puzzle (``.`` = blank)."""
    return [g for g in _all_grids() if all(p in (".", s) for p, s in zip(puzzle, g, strict=True))]


def _rows(cells: str, size: int = 4) -> str:
    return "/".join(cells[r : r + size] for r in range(0, size * size, size))


def _draw_sudoku(rng: random.Random, split: str) -> tuple[tuple, Example]:
    # Drawing the grid from the split's own grids keeps the rejection loop in iter_examples cheap.
    grid = rng.choice(_grids_of(split))
    while True:
        blanks = set(rng.sample(range(16), rng.randint(*SUDOKU_BLANKS)))
        puzzle = "".join("." if i in blanks else c for i, c in enumerate(grid))
        if len(_solutions(puzzle)) == 1:
            return ("sudoku", grid), Example(f"sudoku {_rows(puzzle)}", _rows(grid))


def _solve_sudoku(prompt: str) -> str:
    match = re.fullmatch(r"sudoku ([1-4.]{4})/([1-4.]{4})/([1-4.]{4})/([1-4.]{4})", prompt)
    if not match:
        raise ValueError(f"not a sudoku prompt: {prompt!r}")
    solutions = _solutions("".join(match.groups()))
    if len(solutions) != 1:
        raise ValueError(f"sudoku prompt has {len(solutions)} solutions, expected 1: {prompt!r}")
    return _rows(solutions[0])


# --- open_sudoku --------------------------------------------------------------------------------

# Few givens, so every puzzle has at least two solutions (about three in four draws at 10-12 blanks):
# a cell alone has several plausible digits, and two cells filled in one forward can clash in a row,
# a column or a box.
OPEN_SUDOKU_BLANKS = (10, 12)  # inclusive range of blanked cells; puzzles with one solution are redrawn


def _is_sudoku_completion(puzzle: str, cells: str) -> bool:
    return all(p in (".", c) for p, c in zip(puzzle, cells, strict=True)) and all(
        cells[i] != cells[j] for i in range(16) for j in _PEERS[i]
    )


def _draw_open_sudoku(rng: random.Random, split: str) -> tuple[tuple, Example]:
    return _draw_open_grid(rng, "open_sudoku", "open sudoku", _all_grids(), _solutions, OPEN_SUDOKU_BLANKS)


def _parse_open_sudoku(prompt: str) -> str:
    return _parse_grid(prompt, "open_sudoku", "open sudoku", _solutions, "solution")


def _draw_open_grid(
    rng: random.Random,
    task: str,
    head: str,
    grids: tuple[str, ...],
    solutions_of: Callable[[str], list[str]],
    blank_range: tuple[int, int],
) -> tuple[tuple, Example]:
    """A puzzle of `grids` with at least two completions; the target is one drawn at random, so the
    model learns every valid one."""
    while True:
        grid = rng.choice(grids)
        blanks = set(rng.sample(range(16), rng.randint(*blank_range)))
        puzzle = "".join("." if i in blanks else c for i, c in enumerate(grid))
        solutions = solutions_of(puzzle)
        if len(solutions) >= 2:
            return (task, puzzle), Example(f"{head} {_rows(puzzle)}", _rows(rng.choice(solutions)))


def _parse_grid(prompt: str, task: str, head: str, solutions_of: Callable[[str], list[str]], noun: str) -> str:
    match = re.fullmatch(head + r" ([1-4.]{4})/([1-4.]{4})/([1-4.]{4})/([1-4.]{4})", prompt)
    if not match:
        raise ValueError(f"not a{'n' if task[0] in 'aeiou' else ''} {task} prompt: {prompt!r}")
    puzzle = "".join(match.groups())
    if not solutions_of(puzzle):
        raise ValueError(f"{task} prompt has no {noun}: {prompt!r}")
    return puzzle


# --- latin ---------------------------------------------------------------------------------------

LATIN_BLANKS = (9, 12)  # inclusive range of blanked cells; puzzles with one completion are redrawn


@functools.cache
def _latin_squares() -> tuple[str, ...]:
    """All 576 4x4 Latin squares over 1-4 as 16-digit strings."""
    rows = ["".join(p) for p in itertools.permutations("1234")]
    squares = []
    for grid in itertools.product(rows, repeat=4):
        if all(len({row[c] for row in grid}) == 4 for c in range(4)):
            squares.append("".join(grid))
    return tuple(squares)


def _latin_solutions(puzzle: str) -> list[str]:
    return [g for g in _latin_squares() if all(p in (".", s) for p, s in zip(puzzle, g, strict=True))]


def _is_latin_completion(puzzle: str, cells: str) -> bool:
    lines = [cells[r : r + 4] for r in range(0, 16, 4)]
    columns = ["".join(line[c] for line in lines) for c in range(4)]
    return all(sorted(line) == list("1234") for line in lines + columns) and all(
        p in (".", c) for p, c in zip(puzzle, cells, strict=True)
    )


def _draw_latin(rng: random.Random, split: str) -> tuple[tuple, Example]:
    return _draw_open_grid(rng, "latin", "latin", _latin_squares(), _latin_solutions, LATIN_BLANKS)


def _parse_latin(prompt: str) -> str:
    return _parse_grid(prompt, "latin", "latin", _latin_solutions, "completion")


# --- path --------------------------------------------------------------------------------------

# One length, so that cell i of the puzzle sits at a fixed offset from cell i of the answer: with
# lengths 6-12 the tiny model could not learn to copy the givens (run 6: 14.5 %, givens overwritten).
PATH_LENGTHS = (10, 10)  # inclusive range of cells
PATH_COLOURS = (3, 4)  # the palette is 1..c
PATH_GIVENS = (1, 3)  # inclusive range of given cells


def _path_allowed(puzzle: str, colours: int) -> list[str]:
    palette = "".join(str(d) for d in range(1, colours + 1))
    return [palette if cell == "." else cell for cell in puzzle]


def _path_counts(allowed: list[str]) -> list[dict[str, int]]:
    """counts[i][d]: completions of cells i.. with cell i = d (adjacent cells differ)."""
    counts: list[dict[str, int]] = [{} for _ in allowed]
    for i in range(len(allowed) - 1, -1, -1):
        for d in allowed[i]:
            counts[i][d] = 1 if i == len(allowed) - 1 else sum(n for e, n in counts[i + 1].items() if e != d)
    return counts


def _path_sample(allowed: list[str], rng: random.Random) -> str:
    """A valid colouring drawn uniformly among all of them."""
    counts, cells, previous = _path_counts(allowed), [], ""
    for i in range(len(allowed)):
        options = [(d, n) for d, n in counts[i].items() if d != previous and n > 0]
        previous = rng.choices([d for d, _ in options], weights=[n for _, n in options])[0]
        cells.append(previous)
    return "".join(cells)


def _is_path_answer(puzzle: str, colours: int, cells: str) -> bool:
    allowed = _path_allowed(puzzle, colours)
    return (
        len(cells) == len(puzzle)
        and all(c in a for c, a in zip(cells, allowed, strict=False))
        and all(a != b for a, b in itertools.pairwise(cells))
    )


def _draw_path(rng: random.Random, split: str) -> tuple[tuple, Example]:
    while True:
        length, colours = rng.randint(*PATH_LENGTHS), rng.randint(*PATH_COLOURS)
        givens = rng.sample(range(length), rng.randint(*PATH_GIVENS))
        cells = ["."] * length
        for i in givens:
            cells[i] = str(rng.randint(1, colours))
        puzzle = "".join(cells)
        if sum(_path_counts(_path_allowed(puzzle, colours))[0].values()) >= 2:
            target = _path_sample(_path_allowed(puzzle, colours), rng)
            return ("path", puzzle, colours), Example(f"path {puzzle} colours {colours}", target)


def _parse_path(prompt: str) -> tuple[str, int]:
    match = re.fullmatch(r"path ([1-9.]+) colours ([1-9])", prompt)
    if not match:
        raise ValueError(f"not a path prompt: {prompt!r}")
    puzzle, colours = match[1], int(match[2])
    if not sum(_path_counts(_path_allowed(puzzle, colours))[0].values()):
        raise ValueError(f"path prompt has no answer: {prompt!r}")
    return puzzle, colours


# --- latin5, sudoku6 -------------------------------------------------------------------------------

# Too many grids to list (161 280 Latin squares of order 5, 28 million 6x6 Sudokus), so these are
# solved by backtracking over the most constrained cell; a randomised digit order gives random grids
# and random completions. The blank ranges keep 8-10 givens (latin5) and 8-12 (sudoku6): a median
# draw has 5 and 21 completions, and an open cell has several plausible digits, as in the 4x4 tasks.


class _BigGrid(NamedTuple):
    head: str  # the prompt's first word
    size: int  # digits 1..size, size x size cells
    box: tuple[int, int] | None  # (rows, columns) of a box, or None for a Latin square
    blanks: tuple[int, int]  # inclusive range of blanked cells


BIG_GRIDS = {
    "latin5": _BigGrid("latin5", 5, None, (15, 17)),
    "sudoku6": _BigGrid("sudoku6", 6, (2, 3), (24, 28)),
}
GRID_CELLS = {"sudoku": 16, "latin": 16, "open_sudoku": 16} | {t: g.size**2 for t, g in BIG_GRIDS.items()}


@functools.cache
def _big_peers(task: str) -> tuple[tuple[int, ...], ...]:
    """For each cell, the cells that must hold another digit (same row, column or box)."""
    size, box = BIG_GRIDS[task].size, BIG_GRIDS[task].box

    def unit(i: int) -> tuple:
        r, c = divmod(i, size)
        return (r // box[0], c // box[1]) if box else None

    return tuple(
        tuple(
            j
            for j in range(size * size)
            if j != i and (j // size == i // size or j % size == i % size or (box and unit(j) == unit(i)))
        )
        for i in range(size * size)
    )


def _big_solutions(task: str, puzzle: str, limit: int, rng: random.Random | None = None) -> list[str]:
    """Up to ``limit`` completions of ``puzzle`` (``.`` = blank), digits tried in a random order when
    ``rng`` is given, else in ascending order (so the first completion is deterministic)."""
    peers, digits = _big_peers(task), "".join(str(d) for d in range(1, BIG_GRIDS[task].size + 1))
    cells, found = list(puzzle), []

    def search() -> None:
        best, best_options = -1, ""
        for i, cell in enumerate(cells):
            if cell == ".":
                options = [d for d in digits if all(cells[j] != d for j in peers[i])]
                if best < 0 or len(options) < len(best_options):
                    best, best_options = i, options
                    if len(options) <= 1:
                        break
        if best < 0:
            found.append("".join(cells))
            return
        if rng is not None:
            best_options = rng.sample(best_options, len(best_options))
        for digit in best_options:
            cells[best] = digit
            search()
            if len(found) >= limit:
                return
        cells[best] = "."

    search()
    return found


def _is_big_completion(task: str, puzzle: str, cells: str) -> bool:
    peers = _big_peers(task)
    return all(p in (".", c) for p, c in zip(puzzle, cells, strict=True)) and all(
        c != "0" and int(c) <= BIG_GRIDS[task].size and all(cells[j] != c for j in peers[i])
        for i, c in enumerate(cells)
    )


def _draw_big(task: str) -> Callable[[random.Random, str], tuple[tuple, Example]]:
    grid_spec = BIG_GRIDS[task]

    def draw(rng: random.Random, split: str) -> tuple[tuple, Example]:
        grid = _big_solutions(task, "." * grid_spec.size**2, 1, rng)[0]
        while True:  # the split is checked before the search: a test puzzle costs no wasted solve
            blanks = set(rng.sample(range(grid_spec.size**2), rng.randint(*grid_spec.blanks)))
            puzzle = "".join("." if i in blanks else c for i, c in enumerate(grid))
            if split_of((task, puzzle)) == split and len(_big_solutions(task, puzzle, 2)) >= 2:
                target = _big_solutions(task, puzzle, 1, rng)[0]
                return (task, puzzle), Example(
                    f"{grid_spec.head} {_rows(puzzle, grid_spec.size)}", _rows(target, grid_spec.size)
                )

    return draw


def _parse_big(task: str, prompt: str) -> str:
    size = BIG_GRIDS[task].size
    row = f"([1-{size}.]{{{size}}})"
    match = re.fullmatch(BIG_GRIDS[task].head + " " + "/".join([row] * size), prompt)
    if not match:
        raise ValueError(f"not a {task} prompt: {prompt!r}")
    puzzle = "".join(match.groups())
    if not _big_solutions(task, puzzle, 1):
        raise ValueError(f"{task} prompt has no completion: {prompt!r}")
    return puzzle


# --- count, flip, hide --------------------------------------------------------------------------

# All three hide one rare token among many cells, so that every open cell alone takes the common token
# with probability at least 10/11 > 0.9 and only the joint answer says where the rare one goes. One length
# per task, so that cell i of the prompt sits at a fixed offset from cell i of the answer (as in path).
# A count prompt may ask for k ones and show given ones; the generated ones ask for exactly one among
# 11 to 16 open cells (a harder form, 1-3 ones with givens of both kinds, was not learned by the
# 3.45 M-parameter model in 1 320 CPU steps: run 14 in benchmarks/README.md).
COUNT_CELLS = 16
COUNT_GIVENS = (0, 5)  # inclusive range of given cells, all 0 (fewer would leave under 300 test puzzles)
FLIP_BITS = 16
# hide is flip with the rare cell marked: a committed ``*`` is a token of its own, so "is one hidden
# already?" needs one look over the answer (as count's "is a 1 placed already?"), where flip needs each
# cell compared with its twin in the prompt first, which the tiny model did not learn (run 15). It did not
# learn hide either (run 17: 1 160 steps at 15-27 % of the batch; it copies the bits and writes no ``*``).
HIDE_BITS = 16


def _count_sample(puzzle: str, ones: int, rng: random.Random) -> str:
    """A valid answer drawn uniformly: which open cells take the ones that are left."""
    open_cells = [i for i, c in enumerate(puzzle) if c == "."]
    picks = set(rng.sample(open_cells, ones - puzzle.count("1")))
    return "".join("1" if i in picks else ("0" if c == "." else c) for i, c in enumerate(puzzle))


def _is_count_answer(puzzle: str, ones: int, cells: str) -> bool:
    return (
        len(cells) == len(puzzle)
        and set(cells) <= {"0", "1"}
        and all(p in (".", c) for p, c in zip(puzzle, cells, strict=True))
        and cells.count("1") == ones
    )


def _draw_count(rng: random.Random, split: str) -> tuple[tuple, Example]:
    cells = ["."] * COUNT_CELLS
    for i in rng.sample(range(COUNT_CELLS), rng.randint(*COUNT_GIVENS)):
        cells[i] = "0"
    puzzle = "".join(cells)
    return ("count", puzzle), Example(f"count {puzzle} ones 1", _count_sample(puzzle, 1, rng))


def _parse_count(prompt: str) -> tuple[str, int]:
    match = re.fullmatch(r"count ([01.]+) ones (\d+)", prompt)
    if not match:
        raise ValueError(f"not a count prompt: {prompt!r}")
    puzzle, ones = match[1], int(match[2])
    if not 0 <= ones - puzzle.count("1") <= puzzle.count("."):
        raise ValueError(f"count prompt has no answer: {prompt!r}")
    return puzzle, ones


def _flip_sample(bits: str, rng: random.Random) -> str:
    """The bits with one of them, drawn uniformly, flipped."""
    i = rng.randrange(len(bits))
    return bits[:i] + "10"[int(bits[i])] + bits[i + 1 :]


def _is_flip_answer(bits: str, cells: str) -> bool:
    return (
        len(cells) == len(bits)
        and set(cells) <= {"0", "1"}
        and sum(a != b for a, b in zip(bits, cells, strict=True)) == 1
    )


def _hide_sample(bits: str, rng: random.Random) -> str:
    """The bits with one of them, drawn uniformly, replaced by ``*``."""
    i = rng.randrange(len(bits))
    return bits[:i] + "*" + bits[i + 1 :]


def _is_hide_answer(bits: str, cells: str) -> bool:
    return (
        len(cells) == len(bits)
        and cells.count("*") == 1
        and all(c in (b, "*") for b, c in zip(bits, cells, strict=True))
    )


def _draw_bits(task: str, length: int, sample: Callable[[str, random.Random], str]) -> Callable[..., tuple]:
    """The draw of a task whose prompt is ``task`` and random bits, and whose target ``sample`` makes."""

    def draw(rng: random.Random, split: str) -> tuple[tuple, Example]:
        bits = "".join(rng.choice("01") for _ in range(length))
        return (task, bits), Example(f"{task} {bits}", sample(bits, rng))

    return draw


def _parse_bits(task: str, prompt: str) -> str:
    match = re.fullmatch(rf"{task} ([01]+)", prompt)
    if not match:
        raise ValueError(f"not a {task} prompt: {prompt!r}")
    return match[1]


_DRAW: dict[str, Callable[[random.Random, str], tuple[tuple, Example]]] = {
    "arith": _draw_arith,
    "list": _draw_list,
    "sudoku": _draw_sudoku,
    "latin": _draw_latin,
    "path": _draw_path,
    "open_sudoku": _draw_open_sudoku,
    "latin5": _draw_big("latin5"),
    "sudoku6": _draw_big("sudoku6"),
    "count": _draw_count,
    "flip": _draw_bits("flip", FLIP_BITS, _flip_sample),
    "hide": _draw_bits("hide", HIDE_BITS, _hide_sample),
}
