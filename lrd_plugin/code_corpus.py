"""CPython's standard library as a code corpus: the module list, the train/test split and the BPE.

The corpus is the pure-Python standard library of the interpreter that runs this code
(``sysconfig.get_paths()["stdlib"]``): real code present on every machine, nothing downloaded.

Modules: every ``*.py`` file under the stdlib root, except

* files under a directory named ``test``, ``tests``, ``idle_test``, ``site-packages`` or
  ``__pycache__`` (test suites, installed third-party packages, caches) or ``config-*`` (the build's
  ``python-config.py``);
* generated data rather than code: ``pydoc_data/topics.py`` (Sphinx output), ``_sysconfigdata_*``
  (this build's configuration) and the ``encodings`` charmap tables written by ``gencodec.py``
  (a hundred near-identical tables that would let test modules be recalled from their twins);
* files that are not UTF-8, hold a carriage return, or do not parse with this interpreter's ``ast``.

Split: a module is in ``test`` when the SHA-256 of ``"lrd-code/" + its path relative to the stdlib
root`` (POSIX separators, e.g. ``json/decoder.py``), read as a big-endian integer from its first 8
bytes, is 0 modulo 10; otherwise in ``train``. About 10 % of the modules are held out; the rule needs
no list, is the same on every machine and does not depend on which other files exist. A training
file whose text equals a test file's text (empty ``__init__.py`` files and the like) is dropped from
``train``, so no test module's text is in training.

The standard library differs between Python versions (3.11 and 3.12 hold different files and
different code), so the corpus, the tokenizer and a model trained on them record
``python_version`` and the stdlib's file list digest (``corpus_metadata``).

The tokenizer is a byte-level BPE (``models.BPETokenizer``, the ``tokenizers`` library) learnt
from the ``train`` split only.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import platform
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .models.tokenizer import BPETokenizer

SPLITS = ("train", "test")
TEST_BUCKETS = 10  # one hash bucket in ten is the test split
SPLIT_SALT = "lrd-code/"
EXCLUDED_DIRS = frozenset({"test", "tests", "idle_test", "site-packages", "__pycache__"})
GENERATED_FILES = frozenset({"pydoc_data/topics.py"})
DEFAULT_VOCAB_SIZE = 4096
CORPUS_NAME = "cpython-stdlib"


@dataclass(frozen=True)
class SourceFile:
    path: str  # relative to the stdlib root, POSIX separators
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def split_of_path(path: str) -> str:
    """``train`` or ``test`` for a module path relative to the stdlib root (see the module docstring)."""
    if "\\" in path or path.startswith("/"):
        raise ValueError(f"path must be relative to the stdlib root with POSIX separators, got {path!r}")
    digest = hashlib.sha256((SPLIT_SALT + path).encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") % TEST_BUCKETS == 0 else "train"


def _excluded(parts: tuple[str, ...]) -> bool:
    directories = parts[:-1]
    if any(part in EXCLUDED_DIRS or part.startswith("config-") for part in directories):
        return True
    return "/".join(parts) in GENERATED_FILES or parts[-1].startswith("_sysconfigdata")


def _is_generated_table(path: str, text: str) -> bool:
    return path.startswith("encodings/") and "gencodec.py" in text[:1000]


def _read(path: Path) -> str | None:
    """The file's text when it is UTF-8 without carriage returns and parses; else None."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    if "\r" in text:
        return None
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return text


def list_modules(root: str | Path | None = None) -> list[SourceFile]:
    """Every usable pure-Python module under ``root`` (default: this interpreter's stdlib), by path."""
    return list(_all_modules(str(stdlib_root() if root is None else Path(root))))


@functools.lru_cache(maxsize=4)
def _all_modules(root: str) -> tuple[SourceFile, ...]:
    base = Path(root)
    if not base.is_dir():
        raise FileNotFoundError(f"no standard library directory at {root}")
    found = []
    for directory, subdirectories, names in os.walk(base):  # pruned: site-packages can be huge
        subdirectories[:] = [d for d in subdirectories if d not in EXCLUDED_DIRS and not d.startswith("config-")]
        relative = Path(directory).relative_to(base).parts
        found += [(*relative, name) for name in names if name.endswith(".py")]
    files = []
    for parts in sorted(found):
        file = base.joinpath(*parts)
        if _excluded(parts) or not file.is_file():
            continue
        path = "/".join(parts)
        text = _read(file)
        if text is not None and not _is_generated_table(path, text):
            files.append(SourceFile(path, text))
    return tuple(files)


def copy_modules(destination: str | Path, root: str | Path | None = None) -> int:
    """Write every usable module under ``root`` to the same relative path under ``destination`` and
    return how many. A machine with another Python (a lent GPU's image) then trains on this machine's
    corpus with ``--stdlib-root destination``: the same files, so the same split and digests."""
    base = Path(destination)
    if base.exists() and any(base.iterdir()):
        raise FileExistsError(f"destination {base} must be empty or absent, so that no stray file joins the corpus")
    files = list_modules(root)
    for f in files:
        target = base.joinpath(*f.path.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text, encoding="utf-8", newline="\n")
    return len(files)


def load_split(split: str, root: str | Path | None = None) -> list[SourceFile]:
    """The modules of ``split``; ``train`` holds no file whose text equals a ``test`` file's."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    files = list_modules(root)
    test = [f for f in files if split_of_path(f.path) == "test"]
    if split == "test":
        return test
    test_texts = {f.text for f in test}
    return [f for f in files if split_of_path(f.path) == "train" and f.text not in test_texts]


def corpus_metadata(root: str | Path | None = None) -> dict[str, Any]:
    """What a tokenizer or model trained on this corpus should record: the Python version, the split
    rule and a digest of the file list of each split (which stdlib, which files)."""
    meta: dict[str, Any] = {
        "corpus": CORPUS_NAME,
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "split_rule": f"sha256('{SPLIT_SALT}' + path)[:8] big-endian % {TEST_BUCKETS} == 0 -> test",
    }
    for split in SPLITS:
        files = load_split(split, root)
        listing = "\n".join(f"{f.path} {hashlib.sha256(f.text.encode()).hexdigest()}" for f in files)
        meta[split] = {
            "files": len(files),
            "bytes": sum(len(f.text.encode()) for f in files),
            "digest": hashlib.sha256(listing.encode()).hexdigest()[:16],
        }
    return meta


def build_tokenizer(
    vocab_size: int = DEFAULT_VOCAB_SIZE, root: str | Path | None = None, files: list[SourceFile] | None = None
) -> BPETokenizer:
    """A byte-level BPE learnt from the ``train`` split only (or from ``files``, e.g. a subset in tests),
    with the corpus metadata (Python version, split digests) stored in its ``tokenizer.json``."""
    training = load_split("train", root) if files is None else files
    metadata = corpus_metadata(root) if files is None else {"corpus": "custom", "files": len(training)}
    metadata |= {"python_version": platform.python_version(), "vocab_size": vocab_size}
    return BPETokenizer.train((f.text for f in training), vocab_size=vocab_size, metadata=metadata)
