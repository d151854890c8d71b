"""SGLang integration tests: LRD inside the released ``sglang`` package's own dLLM loops.

Run in the environment ``scripts/test.sh`` builds (``.venv-sglang``: torch 2.13.0 CPU, sglang 0.5.23
without its CUDA-only requirements). Only here, and only before SGLang is imported, `install_shim`
puts a stand-in ``torchvision`` in ``sys.modules``:

- why: importing ``sglang.srt.dllm`` reaches SGLang's config registry, whose image-model modules
  (``configs/deepseek_ocr.py``, ``multimodal/internvl_utils.py``) import torchvision at module level;
  torchvision has no build for this CPU torch, and a PyPI torchvision breaks torch itself.
- what it stands in for: torchvision's image transforms only. No SGLang module, and nothing the
  tests exercise (``DllmAlgorithm``, ``DllmConfig``, the algorithm registry, ``ForwardBatch``,
  ``LowConfidence``, ``VocabParallelEmbedding``, ``ModelRunner``'s input preparation, the plugin
  loader), is replaced: they are the released package's own code.
- why it cannot hide a bug: every attribute of the stand-in is a placeholder that raises as soon as
  it is called, so a dLLM code path that used torchvision would fail the tests instead of passing.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
import types

import pytest


class _Unavailable:
    """A torchvision attribute: may be named (imports, default arguments), never used."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> _Unavailable:
        return _attribute(self._name, attr)

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{self._name} was called: the test-only torchvision stand-in cannot run it")


def _attribute(owner: str, attr: str) -> _Unavailable:
    if attr.startswith("__"):  # introspection (inspect, pickle, pytest) must see a plain module
        raise AttributeError(attr)
    return _Unavailable(f"{owner}.{attr}")


def _stand_in(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
    module.__path__ = []
    module.__getattr__ = lambda attr: _attribute(name, attr)  # type: ignore[method-assign]
    return module


def install_shim() -> None:
    try:
        import torchvision  # noqa: F401  # a real one, if it ever exists for this torch, wins
    except ImportError:
        # transformers caches its answer: settle it (no torchvision) before the stand-in exists, so
        # it keeps its torchvision-free code paths
        from transformers.utils import import_utils

        assert not import_utils.is_torchvision_available()
        for name in ("torchvision", "torchvision.transforms", "torchvision.transforms.functional"):
            sys.modules[name] = _stand_in(name)


install_shim()
if os.environ.get("LRD_REQUIRE_SGLANG") == "1":  # scripts/test.sh: a missing SGLang is an error there
    import sglang  # noqa: F401
else:
    pytest.importorskip("sglang", reason="SGLang is installed in .venv-sglang by scripts/test.sh")
