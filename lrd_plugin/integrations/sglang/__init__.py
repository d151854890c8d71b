"""LRD inside SGLang: ``--dllm-algorithm LRD --dllm-algorithm-config lrd.yaml``.

SGLang finds its dLLM algorithms by scanning its own package only; `register` adds ours to that
registry. It is this package's ``sglang.srt.plugins`` entry point, which SGLang's `load_plugins()`
runs in the launcher, the engine and every scheduler process before server arguments are resolved,
so nothing else has to change in a deployment (``SGLANG_PLUGINS``, if set, must include ``lrd``).
"""

from __future__ import annotations

NAME = "LRD"


def register() -> None:
    """Make ``--dllm-algorithm LRD`` known to SGLang (idempotent)."""
    from sglang.srt.dllm import algorithm as registry

    from .algorithm import LRD

    registry.algo_name_to_cls[NAME] = LRD
