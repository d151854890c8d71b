"""Find a Fast-dLLM checkout and tell which of the two known layouts it has.

Fast-dLLM is not an installable package: its scripts use flat imports (``from generate import ...``,
``from model.modeling_llada import ...``) from inside ``llada/`` or ``dream/``. Two layouts exist:

* ``v1`` — upstream ``a9b81e4`` and later (and the fork ``BBBBBBob/Fast-dLLM``): ``v1/llada``,
  ``v1/dream``; batched generation, factor decoding.
* ``root`` — the older ``24cc59e``: ``llada/`` and ``dream/`` at the top; batch 1, no factor, and its
  cached loops run one cached forward per block even when the refresh forward finished the block.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ENV_VAR = "FAST_DLLM_ROOT"


@dataclass(frozen=True)
class Layout:
    name: str  # "v1" (a9b81e4 and later) or "root" (24cc59e)
    root: Path
    llada_dir: Path
    dream_dir: Path

    @property
    def legacy(self) -> bool:
        """24cc59e's generation loops (batch 1, no factor, one extra cached forward per block)."""
        return self.name == "root"


def find_root(root: str | os.PathLike[str] | None = None) -> Path:
    """`root`, else ``$FAST_DLLM_ROOT``; an error says how to set it."""
    value = root if root is not None else os.environ.get(ENV_VAR)
    if not value:
        raise FileNotFoundError(
            f"no Fast-dLLM checkout given: pass root=... or set {ENV_VAR} to a clone of NVlabs/Fast-dLLM"
        )
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise FileNotFoundError(f"{ENV_VAR}={value} is not a directory")
    return path


def detect_layout(root: str | os.PathLike[str] | None = None) -> Layout:
    """The checkout's layout, or a ValueError naming the files that were looked for."""
    path = find_root(root)
    for name, prefix in (("v1", path / "v1"), ("root", path)):
        llada, dream = prefix / "llada", prefix / "dream"
        if (llada / "generate.py").is_file() and (dream / "model" / "generation_utils_block.py").is_file():
            return Layout(name=name, root=path, llada_dir=llada, dream_dir=dream)
    raise ValueError(
        f"{path} is not a Fast-dLLM layout this plugin knows: expected v1/llada/generate.py and "
        "v1/dream/model/generation_utils_block.py (upstream a9b81e4 and later) or llada/generate.py and "
        "dream/model/generation_utils_block.py (upstream 24cc59e)"
    )


# Fast-dLLM's LLaDA and Dream code both live in a top-level package called ``model``, and LLaDA's
# generation code in a top-level module ``generate`` (v2's in ``generation_functions``): these names are
# swapped per import.
_FLAT_NAMES = ("model", "generate", "eval_llada", "eval", "generation_functions")


@contextlib.contextmanager
def flat_imports(directory: Path) -> Iterator[None]:
    """Import Fast-dLLM's flat modules from `directory`; the caller keeps the module objects, and
    whatever held those names in ``sys.modules`` before is put back afterwards."""
    saved = {
        name: module
        for name, module in sys.modules.items()
        if name in _FLAT_NAMES or name.startswith(tuple(f"{n}." for n in _FLAT_NAMES))
    }
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name in [n for n in sys.modules if n in _FLAT_NAMES or n.startswith(tuple(f"{f}." for f in _FLAT_NAMES))]:
            del sys.modules[name]
        sys.modules.update(saved)


def import_flat(directory: Path, name: str) -> ModuleType:
    """Import the flat module `name` (e.g. ``"generate"``) from `directory` without leaving it, or
    the ``model`` package it pulls in, under a name another layout would collide with."""
    with flat_imports(directory):
        return importlib.import_module(name)
