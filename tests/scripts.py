"""Load a repository script that is not in a package (benchmarks/*.py, patches/apply.py) by its path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_script(path: Path, name: str) -> ModuleType:
    """`path` as module `name`, registered in ``sys.modules`` (dataclasses look their module up by
    name while a class is built), as a user's ``python path`` would run it."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
