"""Scored code tasks on held-out CPython standard-library modules (``code_corpus``).

Three tasks, every span made of whole lines of a function's body (the lines after its signature and
docstring, nested functions included):

* ``infill_line``: one line of code (not blank, not only a comment), given the file around it;
* ``infill_block``: 2-8 consecutive lines (the first and last of them code), given the file around it;
* ``body``: a function's whole body, given everything in the file before it (so its decorators,
  signature and docstring, which must have one), generated in a canvas of ``gen_length`` tokens
  padded with EOS after the answer, as in LLaDA's SFT.

Contexts are whole lines, cut to token budgets: the left context holds the last lines before the
span that fit in ``LEFT_BUDGET`` tokens with the BOS, the right context (infills only) the first
lines after it that fit in ``RIGHT_BUDGET``; a ``body`` prompt must reach back to the ``def`` line.
Infills give the model the span's true token length (the number of masks, as masked-diffusion
infilling is usually scored); ``body`` does not. Spans hold ``MIN_SPAN`` to ``MAX_SPAN`` tokens
(a ``body`` at most ``gen_length - 1``, so an EOS follows it). Because the BPE never merges across a
line break, a span tokenises the same alone and inside its file: prompt + span + right context
are exactly the file's tokens there.

Scores (``score``): ``exact`` (the text equals the original span), ``parses`` (the completed file,
prefix + text + suffix, passes ``ast.parse``), ``runs`` (only for a function whose docstring holds
doctests that pass on the original file: the completed module's doctests for that function pass in
a subprocess with a timeout; None elsewhere), ``edit_similarity`` (``difflib``'s ratio between the
proposed and the original text, CodeXGLUE's "Edit Sim": partial credit that a shifted line still
earns) and ``token_accuracy`` (share of the span's tokens, and for ``body`` the first EOS, predicted
at their position: a one-token shift scores the rest of the span zero). ``trivial_fill`` is the baseline a model
must beat: the span's positions filled with the most frequent training token.

Examples are drawn deterministically from the seed (a shuffle of every candidate site of the split);
the test split holds no duplicate span. The same extraction on ``train`` feeds the training script.
"""

from __future__ import annotations

import array
import ast
import bisect
import collections
import difflib
import functools
import itertools
import json
import random
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .code_corpus import SourceFile, load_split
from .models.tokenizer import BPETokenizer

TASKS = ("infill_line", "infill_block", "body")
INFILL_TASKS = ("infill_line", "infill_block")
LEFT_BUDGET = 384  # tokens of left context, BOS included
RIGHT_BUDGET = 128  # tokens of right context (infills)
MIN_SPAN = 3  # tokens
MAX_SPAN = 256  # tokens
BLOCK_LINES = (2, 8)  # inclusive range of lines in an infill_block span
BODY_GEN_LENGTH = 256  # default canvas of a body: bodies of up to 255 tokens
DOCTEST_TIMEOUT = 20.0  # seconds


@dataclass(frozen=True)
class Function:
    qualname: str  # "Class.method", "outer.<locals>.inner"
    def_line: int  # first line of the definition, decorators included (1-based)
    body_start: int  # first line of the body after the docstring (1-based)
    body_end: int  # last line of the body (1-based, inclusive)
    docstring: bool
    doctest: bool  # the docstring holds '>>>' and the function is reachable by attribute from its module


@dataclass(frozen=True)
class CodeExample:
    """One held-out (or training) problem. ``text[start:end]`` is the gold span."""

    task: str
    path: str  # module path relative to the stdlib root
    function: str  # qualified name of the innermost function holding the span
    start: int  # character offsets of the span in ``text``
    end: int
    prompt: str  # the left context (whole lines, ends where the span starts)
    right: str  # the right context (whole lines from where the span ends; "" for body)
    prompt_ids: tuple[int, ...]  # BOS + tokens of ``prompt``
    span_ids: tuple[int, ...]  # tokens of the span
    right_ids: tuple[int, ...]  # tokens of ``right``
    gen_length: int  # canvas length: span + right context for infills, the EOS-padded answer for body
    doctest: bool
    text: str = field(repr=False)  # the whole original file

    @property
    def span(self) -> str:
        return self.text[self.start : self.end]

    @property
    def n_tokens(self) -> int:
        return len(self.span_ids)

    def reassemble(self, filled: str) -> str:
        """The file with ``filled`` in place of the span."""
        return self.text[: self.start] + filled + self.text[self.end :]

    def canvas(self, mask_id: int) -> list[int]:
        """What the decoder fills after ``prompt_ids``: masks where the span goes, then the right context
        (infills), or ``gen_length`` masks (body)."""
        if self.task == "body":
            return [mask_id] * self.gen_length
        return [mask_id] * self.n_tokens + list(self.right_ids)

    def answer_ids(self, eos_id: int) -> list[int]:
        """The reference canvas: the span (+ EOS padding for body, + right context for infills)."""
        if self.task == "body":
            return list(self.span_ids) + [eos_id] * (self.gen_length - self.n_tokens)
        return list(self.span_ids) + list(self.right_ids)


# --- functions and lines of a module --------------------------------------------------------------


def split_lines(text: str) -> list[str]:
    """Lines with their ``\\n`` (only ``\\n`` ends a line, as for ``ast`` on these files)."""
    lines = text.split("\n")
    return [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


def _blank_or_comment(fragment: str) -> bool:
    stripped = fragment.strip()
    return not stripped or stripped.startswith("#")


def _code_line(line: str) -> bool:
    return not _blank_or_comment(line)


def _after(lines: list[str], lineno: int, col: int) -> str:
    """Text of 1-based line ``lineno`` after UTF-8 byte column ``col``."""
    return lines[lineno - 1].encode()[col:].decode("utf-8", errors="replace")


def _before(lines: list[str], lineno: int, col: int) -> str:
    return lines[lineno - 1].encode()[:col].decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=1024)
def functions(text: str) -> tuple[Function, ...]:
    """Every function of a module whose body sits on lines of its own, in source order."""
    tree = ast.parse(text)
    lines = split_lines(text)
    found: list[Function] = []

    def visit(node: ast.AST, prefix: str, reachable: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = prefix + child.name
                info = _function(child, qualname, lines, reachable)
                if info is not None:
                    found.append(info)
                visit(child, qualname + ".<locals>.", False)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", reachable)
            else:
                visit(child, prefix, reachable)

    visit(tree, "", True)
    return tuple(sorted(found, key=lambda f: (f.def_line, f.body_start)))


def _function(
    node: ast.FunctionDef | ast.AsyncFunctionDef, qualname: str, lines: list[str], reachable: bool
) -> Function | None:
    body = node.body
    doc = ast.get_docstring(node, clean=False)
    if doc is not None and len(body) < 2:
        return None  # nothing but the docstring
    first = body[1] if doc is not None else body[0]
    if doc is not None:
        if body[0].end_lineno is None or not _blank_or_comment(
            _after(lines, body[0].end_lineno, body[0].end_col_offset or 0)
        ):
            return None
        body_start = body[0].end_lineno + 1
    else:
        decorators = getattr(first, "decorator_list", [])
        body_start = min([first.lineno, *(d.lineno for d in decorators)])
        if body_start <= node.lineno:
            return None
    first_line = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))])
    if first_line < body_start or _before(lines, first_line, first.col_offset).strip():
        return None  # the body's first statement shares a line with the header or docstring
    if node.end_lineno is None or not _blank_or_comment(_after(lines, node.end_lineno, node.end_col_offset or 0)):
        return None
    def_line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    doctest = doc is not None and ">>>" in doc and reachable
    return Function(qualname, def_line, body_start, node.end_lineno, doc is not None, doctest)


# --- tokenised files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizedFile:
    source: SourceFile
    flat: array.array = field(repr=False)  # the file's tokens (each line tokenises alone as in the file)
    token_offsets: tuple[int, ...]  # index in ``flat`` where each line starts, and len(flat) last
    offsets: tuple[int, ...]  # character offset of each line's start, and len(text) last

    @property
    def n_lines(self) -> int:
        return len(self.offsets) - 1

    def line_tokens(self, line: int) -> int:
        """Token count of 1-based line ``line``."""
        return self.token_offsets[line] - self.token_offsets[line - 1]

    def ids(self, first: int, last: int) -> list[int]:
        """Tokens of 1-based lines ``first..last`` (inclusive; none when last < first)."""
        if last < first:
            return []
        return self.flat[self.token_offsets[first - 1] : self.token_offsets[last]].tolist()

    def chars(self, first: int, last: int) -> tuple[int, int]:
        return self.offsets[first - 1], self.offsets[last]


_TOKENIZED: weakref.WeakKeyDictionary[BPETokenizer, dict[str, TokenizedFile]] = weakref.WeakKeyDictionary()


def tokenize_file(source: SourceFile, tokenizer: BPETokenizer) -> TokenizedFile:
    """The file tokenised line by line (cached per tokenizer and path)."""
    cache = _TOKENIZED.setdefault(tokenizer, {})
    cached = cache.get(source.path)
    if cached is not None and cached.source.text == source.text:
        return cached
    lines = split_lines(source.text)
    flat = array.array("I")
    token_offsets, offsets = [0], [0]
    for line, ids in zip(lines, tokenizer.encode_lines(lines), strict=True):
        flat.extend(ids)
        token_offsets.append(len(flat))
        offsets.append(offsets[-1] + len(line))
    tokenized = TokenizedFile(source, flat, tuple(token_offsets), tuple(offsets))
    cache[source.path] = tokenized
    return tokenized


def _left_lines(file: TokenizedFile, first: int, budget: int) -> int:
    """The first line of the longest run of whole lines ending just before line ``first`` that fits
    in ``budget`` tokens."""
    line = first
    while line > 1 and file.token_offsets[first - 1] - file.token_offsets[line - 2] <= budget:
        line -= 1
    return line


def _right_lines(file: TokenizedFile, last: int, budget: int) -> int:
    """The last line of the longest run of whole lines starting just after line ``last`` within ``budget``."""
    line = last
    while line < file.n_lines and file.token_offsets[line + 1] - file.token_offsets[last] <= budget:
        line += 1
    return line


def iter_windows(
    split: str, tokenizer: BPETokenizer, length: int = 256, seed: int = 0, *, root: str | None = None
) -> Iterator[list[int]]:
    """An endless seeded stream of ``length``-token windows of ``split``'s files: BOS, then the file's
    tokens from the start of a line (the line holding a token drawn uniformly over the split), and
    past the end of the file EOS to the end of the window."""
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    files = [tokenize_file(source, tokenizer) for source in load_split(split, root)]
    ends = list(itertools.accumulate(len(f.flat) for f in files))
    rng = random.Random(f"code/window/{split}/{seed}")
    while True:
        position = rng.randrange(ends[-1])
        index = bisect.bisect_right(ends, position)
        file = files[index]
        local = position - (ends[index - 1] if index else 0)
        start = file.token_offsets[bisect.bisect_right(file.token_offsets, local) - 1]
        ids = file.flat[start : start + length - 1].tolist()
        yield [tokenizer.bos_id, *ids] + [tokenizer.eos_id] * (length - 1 - len(ids))


# --- candidate sites and examples ------------------------------------------------------------------

Site = tuple[int, int, int]  # (file index, first line, last line), 1-based inclusive lines


def _innermost(funcs: Sequence[Function], first: int, last: int) -> Function | None:
    """The innermost function whose body region holds lines ``first..last``."""
    best = None
    for f in funcs:
        if f.body_start <= first and last <= f.body_end and (best is None or f.body_start >= best.body_start):
            best = f
    return best


def _sites(task: str, files: Sequence[SourceFile]) -> list[Site]:
    sites: set[Site] = set()
    for index, source in enumerate(files):
        lines = split_lines(source.text)
        for f in functions(source.text):
            if task == "body":
                if f.docstring:
                    sites.add((index, f.body_start, f.body_end))
                continue
            code = [n for n in range(f.body_start, f.body_end + 1) if _code_line(lines[n - 1])]
            if task == "infill_line":
                sites.update((index, n, n) for n in code)
                continue
            code_set = set(code)
            low, high = BLOCK_LINES
            for n in code:
                for size in range(low, high + 1):
                    last = n + size - 1
                    if last > f.body_end:
                        break
                    if last in code_set:
                        sites.add((index, n, last))
    return sorted(sites)


@functools.lru_cache(maxsize=16)
def _split_sites(task: str, split: str, root: str | None) -> tuple[tuple[SourceFile, ...], tuple[Site, ...]]:
    files = tuple(load_split(split, root))
    return files, tuple(_sites(task, files))


def count_sites(task: str, split: str = "test", root: str | None = None) -> int:
    """Candidate spans of ``task`` in ``split`` before the token-length filter."""
    return len(_split_sites(_check_task(task), split, root)[1])


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")
    return task


def make_example(
    task: str,
    source: SourceFile,
    first: int,
    last: int,
    tokenizer: BPETokenizer,
    *,
    gen_length: int = BODY_GEN_LENGTH,
    left_budget: int = LEFT_BUDGET,
    right_budget: int = RIGHT_BUDGET,
    max_span: int = MAX_SPAN,
    min_span: int = MIN_SPAN,
) -> CodeExample | None:
    """The example whose span is lines ``first..last`` of ``source``, or None when the span's token
    length is out of range (or a body prompt would not reach its ``def`` line)."""
    _check_task(task)
    file = tokenize_file(source, tokenizer)
    span_ids = file.ids(first, last)
    longest = min(max_span, gen_length - 1) if task == "body" else max_span
    if not min_span <= len(span_ids) <= longest:
        return None
    owner = _innermost(functions(source.text), first, last)
    if owner is None:
        return None
    prompt_first = _left_lines(file, first, left_budget - 1)
    if task == "body" and prompt_first > owner.def_line:
        return None
    right_last = last if task == "body" else _right_lines(file, last, right_budget)
    start, end = file.chars(first, last)
    prompt_start = file.offsets[prompt_first - 1]
    right_end = file.offsets[right_last]
    right_ids = file.ids(last + 1, right_last) if right_last > last else []
    return CodeExample(
        task=task,
        path=source.path,
        function=owner.qualname,
        start=start,
        end=end,
        prompt=source.text[prompt_start:start],
        right=source.text[end:right_end],
        prompt_ids=(tokenizer.bos_id, *file.ids(prompt_first, first - 1)),
        span_ids=tuple(span_ids),
        right_ids=tuple(right_ids),
        gen_length=gen_length if task == "body" else len(span_ids) + len(right_ids),
        doctest=owner.doctest,
        text=source.text,
    )


def generate_examples(
    task: str,
    split: str,
    n: int,
    tokenizer: BPETokenizer,
    seed: int = 0,
    *,
    offset: int = 0,
    root: str | None = None,
    **limits: Any,
) -> list[CodeExample]:
    """Examples ``offset`` to ``offset + n - 1`` of a seeded shuffle of every site of ``task`` in ``split``
    that fits ``limits`` (``make_example``'s budgets); fewer when the split holds fewer. The order does
    not depend on ``n``, so runs with consecutive offsets split one long run into shards."""
    files, sites = _split_sites(_check_task(task), split, root)
    order = list(sites)
    random.Random(f"code/{task}/{split}/{seed}").shuffle(order)
    made = (make_example(task, files[index], first, last, tokenizer, **limits) for index, first, last in order)
    return list(itertools.islice((e for e in made if e is not None), offset, offset + n))


def iter_examples(
    task: str, split: str, tokenizer: BPETokenizer, seed: int = 0, *, root: str | None = None, **limits: Any
) -> Iterator[CodeExample]:
    """An endless seeded stream of examples drawn with replacement (for training on ``train``)."""
    files, sites = _split_sites(_check_task(task), split, root)
    if not sites:
        raise ValueError(f"no {task} sites in the {split} split")
    rng = random.Random(f"code/{task}/{split}/{seed}/stream")
    misses = 0
    while True:
        index, first, last = sites[rng.randrange(len(sites))]
        example = make_example(task, files[index], first, last, tokenizer, **limits)
        if example is not None:
            misses = 0
            yield example
            continue
        misses += 1
        if misses > max(1000, 4 * len(sites)):
            raise ValueError(f"hardly any {task} site of the {split} split fits the limits {limits}")


# --- scores ------------------------------------------------------------------------------------


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


def answer_text(example: CodeExample, ids: Sequence[int], tokenizer: BPETokenizer) -> str:
    """The text a decoded canvas proposes for the span: for body, the tokens up to the first EOS; for an
    infill, the span's positions (specials dropped)."""
    ids = [int(i) for i in ids]
    if example.task == "body":
        if tokenizer.eos_id in ids:
            ids = ids[: ids.index(tokenizer.eos_id)]
    else:
        ids = ids[: example.n_tokens]
    return tokenizer.decode(ids)


def token_accuracy(example: CodeExample, ids: Sequence[int], eos_id: int) -> float:
    """Share of the span's tokens (and, for body, the EOS after it) predicted at their position."""
    gold = list(example.span_ids) + ([eos_id] if example.task == "body" else [])
    predicted = [int(i) for i in ids[: len(gold)]]
    return sum(p == g for p, g in zip(predicted, gold, strict=False)) / len(gold)


def score(
    example: CodeExample,
    ids: Sequence[int],
    tokenizer: BPETokenizer,
    *,
    run_doctests: bool = False,
    timeout: float = DOCTEST_TIMEOUT,
) -> dict[str, Any]:
    """``exact``, ``parses``, ``runs`` (None unless ``run_doctests`` and the function has passing doctests)
    and ``token_accuracy`` of a decoded canvas ``ids`` (the ``gen_length`` positions after the prompt)."""
    text = answer_text(example, ids, tokenizer)
    result = score_text(example, text, run_doctests=run_doctests, timeout=timeout)
    result["token_accuracy"] = token_accuracy(example, ids, tokenizer.eos_id)
    return result


def score_text(
    example: CodeExample, text: str, *, run_doctests: bool = False, timeout: float = DOCTEST_TIMEOUT
) -> dict[str, Any]:
    completed = example.reassemble(text)
    ok = parses(completed)
    runs = None
    if run_doctests and example.doctest and gold_runs(example, timeout):
        runs = ok and run_doctest(example.path, example.function, completed, timeout)
    return {
        "exact": text == example.span,
        "parses": ok,
        "runs": runs,
        "edit_similarity": edit_similarity(text, example.span),
    }


def edit_similarity(text: str, gold: str) -> float:
    """2 M / T of ``difflib.SequenceMatcher`` (M matched characters, T both lengths): 1.0 for the same
    text, 0.0 for nothing in common; the Edit Sim of CodeXGLUE's code completion, without its junk
    heuristic (so long texts are compared in full)."""
    return difflib.SequenceMatcher(None, text, gold, autojunk=False).ratio()


@functools.lru_cache(maxsize=256)
def _gold_runs(path: str, function: str, text: str, timeout: float) -> bool:
    return run_doctest(path, function, text, timeout)


def gold_runs(example: CodeExample, timeout: float = DOCTEST_TIMEOUT) -> bool:
    """Whether the function's doctests pass on the original file (only then is ``runs`` scored)."""
    return example.doctest and _gold_runs(example.path, example.function, example.text, timeout)


_DOCTEST_SCRIPT = r"""
import doctest, importlib, json, sys, types
path, name, qualname = sys.argv[1:4]
source = open(path, encoding="utf-8").read()
package = name.rpartition(".")[0] if not path.endswith("__init__.py") else name
if package:
    importlib.import_module(package)
module = types.ModuleType(name)
module.__file__ = path
module.__package__ = package
sys.modules[name] = module
exec(compile(source, path, "exec"), module.__dict__)
target = module
for part in qualname.split("."):
    target = getattr(target, part)
target = getattr(target, "__func__", getattr(target, "fget", target))
runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
for test in doctest.DocTestFinder(recurse=False).find(target, qualname, module=module, globs=dict(module.__dict__)):
    runner.run(test, out=lambda text: None)
result = runner.summarize(verbose=False)
print(json.dumps({"attempted": result.attempted, "failed": result.failed}))
"""


def module_name(path: str) -> str:
    """``json/decoder.py`` -> ``json.decoder``; ``json/__init__.py`` -> ``json``."""
    parts = path[: -len(".py")].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def run_doctest(path: str, function: str, text: str, timeout: float = DOCTEST_TIMEOUT) -> bool:
    """Run ``function``'s doctests against the module ``text`` (as module ``path``) in an isolated
    subprocess; True when at least one example ran and none failed. The code runs for real: use it on
    the standard library and on model output for it, in a sandbox if in doubt."""
    if "<locals>" in function:
        return False
    with tempfile.TemporaryDirectory(prefix="lrd-doctest-") as tmp:
        file = Path(tmp) / Path(path).name
        file.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run(
                [sys.executable, "-I", "-c", _DOCTEST_SCRIPT, str(file), module_name(path), function],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return False
    if done.returncode != 0:
        return False
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return False
    return result.get("attempted", 0) > 0 and result.get("failed", 1) == 0


# --- decoding --------------------------------------------------------------------------------------


def decode_chunks(
    denoiser: Any,
    examples: Sequence[CodeExample],
    mask_id: int,
    pad_id: int,
    *,
    config: Any = None,
    cache: str = "prefix",
    block_length: int = 32,
    batch_size: int = 16,
    device: str = "cpu",
    record_kl: bool = False,
) -> Iterator[tuple[list[int], Any, float]]:
    """Decode ``examples`` with ``lrd_plugin.generate`` (default config: LLaDA's low-confidence
    remasking, one token per step); yields (indices of the chunk's examples, its ``GenerationOutput``,
    the decode's wall seconds).

    ``body`` examples of equal ``gen_length`` decode in left-padded batches, in blocks of
    ``block_length``. An infill's canvas (its masks, then its right context) has its own length, so
    infills decode one at a time, as one block: under block-diffusion attention the masks would not
    see the right context, so infills need a full-attention denoiser."""
    import time

    import torch

    from .config import LRDConfig
    from .decoder import generate

    config = LRDConfig.base(policy="low_confidence") if config is None else config
    bodies = [i for i, e in enumerate(examples) if e.task == "body"]
    infills = [i for i, e in enumerate(examples) if e.task != "body"]
    if infills and getattr(denoiser, "block_size", None) is not None:
        raise ValueError("infill examples need a full-attention denoiser (block_size=None)")
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for i in bodies:
        groups[examples[i].gen_length].append(i)
    chunks = [(g, m[k : k + batch_size]) for g, m in groups.items() for k in range(0, len(m), batch_size)]
    chunks += [(examples[i].gen_length, [i]) for i in infills]
    for gen_length, members in chunks:
        prompts = [list(examples[i].prompt_ids) for i in members]
        width = max(map(len, prompts))
        ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
        keys = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
        canvas = torch.tensor([examples[i].canvas(mask_id) for i in members], device=device)
        body = examples[members[0]].task == "body"
        begin = time.perf_counter()
        result = generate(
            denoiser,
            ids,
            attention_mask=keys,
            gen_length=gen_length,
            block_length=block_length if body else gen_length,
            config=config,
            cache=cache,
            canvas=canvas,
            record_kl=record_kl,
        )
        yield members, result, time.perf_counter() - begin


def decode_examples(
    denoiser: Any,
    examples: Sequence[CodeExample],
    mask_id: int,
    pad_id: int,
    *,
    config: Any = None,
    block_length: int = 32,
    batch_size: int = 16,
    device: str = "cpu",
) -> list[list[int]]:
    """The decoded canvas (``gen_length`` ids after the prompt) of each example, as ``decode_chunks``
    decodes it with a prefix cache."""
    out: dict[int, list[int]] = {}
    chunks = decode_chunks(
        denoiser,
        examples,
        mask_id,
        pad_id,
        config=config,
        block_length=block_length,
        batch_size=batch_size,
        device=device,
    )
    for members, result, _ in chunks:
        for i, row in zip(members, result.generated.tolist(), strict=True):
            out[i] = row
    return [out[i] for i in range(len(examples))]


# --- the trivial baseline ----------------------------------------------------------------------------


def token_counts(tokenizer: BPETokenizer, root: str | None = None) -> collections.Counter[int]:
    """How often each token occurs in the training split."""
    counts: collections.Counter[int] = collections.Counter()
    for source in load_split("train", root):
        counts.update(tokenize_file(source, tokenizer).flat)
    return counts


def trivial_fill(example: CodeExample, token: int, eos_id: int) -> list[int]:
    """The baseline's canvas: every span position the most frequent training token (for body, followed
    by EOS, so the answer has the right length); infills keep their right context."""
    if example.task == "body":
        return [token] * example.n_tokens + [eos_id] * (example.gen_length - example.n_tokens)
    return [token] * example.n_tokens + list(example.right_ids)


def copy_fill(example: CodeExample) -> str:
    """The stronger trivial baseline: an infill's span replaced by as many lines copied from just above
    it (code often repeats its neighbour); a body by ``pass`` at the indentation of its docstring's last line."""
    above = split_lines(example.prompt)
    if example.task == "body":
        last = above[-1] if above else ""
        return " " * (len(last) - len(last.lstrip())) + "pass\n"
    n_lines = max(1, len(split_lines(example.span)))
    return "".join(above[-n_lines:])


def summarize(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each score over the examples (``runs`` over the examples where it is defined)."""
    if not scores:
        return {"n": 0}
    ran = [s["runs"] for s in scores if s.get("runs") is not None]
    out: dict[str, Any] = {
        "n": len(scores),
        "exact": sum(s["exact"] for s in scores) / len(scores),
        "parses": sum(s["parses"] for s in scores) / len(scores),
        "runs": sum(ran) / len(ran) if ran else None,
        "n_runs": len(ran),
        "edit_similarity": sum(s["edit_similarity"] for s in scores) / len(scores),
    }
    if all("token_accuracy" in s for s in scores):
        out["token_accuracy"] = sum(s["token_accuracy"] for s in scores) / len(scores)
    return out
