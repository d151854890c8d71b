"""LRD inside NVlabs/Fast-dLLM v1 without forking it.

Runtime plugin (nothing in the checkout changes)::

    from lrd_plugin.integrations.fast_dllm import enable_llada
    generate = enable_llada("/path/to/Fast-dLLM")          # or $FAST_DLLM_ROOT
    x, nfe = generate.generate_with_prefix_cache(model, prompt, steps=256, gen_length=256,
                                                 block_length=32, threshold=0.9, sampler="lrd")

Dream (its block sampler; bind it as Fast-dLLM's ``dream/eval.py`` does)::

    from lrd_plugin.integrations.fast_dllm import enable_dream
    block = enable_dream("/path/to/Fast-dLLM")             # model.generation_utils_block, switched
    model.diffusion_generate = types.MethodType(block.DreamGenerationMixin.diffusion_generate, model)
    model._sample = types.MethodType(block.DreamGenerationMixin._sample, model)
    out = model.diffusion_generate(ids, max_new_tokens=256, steps=256, block_length=32,
                                   alg="confidence_threshold", threshold=0.9, sampler="lrd")

Fast-dLLM v2 (its ``batch_sample``; bind it as ``v2/eval.py`` does)::

    from lrd_plugin.integrations.fast_dllm import enable_v2
    functions = enable_v2("/path/to/Fast-dLLM")             # v2/generation_functions, switched
    model.mdm_sample = types.MethodType(functions.Fast_dLLM_QwenForCausalLM.batch_sample, model)
    out = model.mdm_sample(ids, tokenizer, block_size=32, max_new_tokens=256, small_block_size=8,
                           min_len=..., seq_len=..., threshold=0.9, sampler="lrd")

With ``sampler`` absent the functions are upstream's own. ``patches/`` makes the same switch part of
a checkout's files instead.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

from . import dream, llada, v2
from .layout import ENV_VAR, Layout, detect_layout, find_root, flat_imports, import_flat

__all__ = [
    "ENV_VAR",
    "Layout",
    "detect_layout",
    "enable_dream",
    "enable_llada",
    "enable_v2",
    "flat_imports",
    "import_flat",
    "v2_dir",
]


def enable_llada(root: str | os.PathLike[str] | None = None) -> ModuleType:
    """Put the checkout's LLaDA directory on ``sys.path``, import its ``generate`` module (so later
    ``from generate import ...`` get the switched functions) and add ``sampler="lrd"`` to it."""
    return llada.install(_import_from(detect_layout(root).llada_dir, "generate"))


def enable_dream(root: str | os.PathLike[str] | None = None) -> ModuleType:
    """Put the checkout's Dream directory on ``sys.path``, import its ``model.generation_utils_block``
    (so later ``from model.generation_utils_block import DreamGenerationMixin``, as in ``eval.py``, get
    the switched class) and add ``sampler="lrd"`` to ``diffusion_generate`` / ``_sample``."""
    return dream.install(_import_from(detect_layout(root).dream_dir, "model.generation_utils_block"))


def v2_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The checkout's ``v2/`` directory (Fast-dLLM v2's generation and eval scripts)."""
    path = find_root(root) / "v2"
    if not (path / "generation_functions.py").is_file():
        raise ValueError(
            f"{path} has no generation_functions.py: Fast-dLLM v2 needs upstream a9b81e4 or later (v2/ at the root)"
        )
    return path


def enable_v2(root: str | os.PathLike[str] | None = None) -> ModuleType:
    """Put the checkout's ``v2/`` directory on ``sys.path``, import its ``generation_functions`` (so
    ``eval.py``'s ``import generation_functions`` gets the switched class) and add ``sampler="lrd"`` to
    ``Fast_dLLM_QwenForCausalLM.batch_sample``."""
    return v2.install(_import_from(v2_dir(root), "generation_functions"))


def _import_from(directory: Path, name: str) -> ModuleType:
    """Import upstream's flat module `name` with `directory` first on ``sys.path``, refusing a
    ``model`` package already imported from elsewhere (LLaDA's and Dream's share that name)."""
    loaded = sys.modules.get("model")
    if loaded is not None and not str(getattr(loaded, "__file__", "")).startswith(str(directory)):
        raise RuntimeError(
            f"a package named 'model' is already imported from {getattr(loaded, '__file__', '?')}: Fast-dLLM's "
            "LLaDA and Dream code both use that name, so enable them in separate processes"
        )
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    return importlib.import_module(name)
