"""Fast-dLLM's lm-eval entry points with ``sampler=lrd`` in ``--model_args``.

    python -m lrd_plugin.integrations.fast_dllm.evaluate llada --model llada_dist \\
        --model_args model_path=...,gen_length=256,steps=256,block_length=32,use_cache=True,threshold=0.9,sampler=lrd \\
        --tasks gsm8k ...

is upstream's ``eval_llada.py`` command with the script swapped for this launcher and one argument
added (``dream`` runs ``dream/eval.py``'s ``dream`` model the same way, ``v2`` runs ``v2/eval.py``'s
``fast_dllm_v2``). ``lrd_<field>=value`` model args set LRD fields. A checkout patched with
``patches/apply.py`` needs no launcher: its own ``eval_llada.py`` / ``eval.py`` accept the same arguments.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from .layout import detect_layout
from .settings import active, harness_settings

HARNESSES = {
    "llada": ("eval_llada", "LLaDAEvalHarness"),
    "dream": ("eval", "Dream"),
    "v2": ("eval", "Fast_dLLM_v2EvalHarness"),
}


def harness_switch(cls: type, *, needs_cache: bool = False) -> type:
    """Class decorator for an lm-eval harness of Fast-dLLM: its ``__init__`` takes ``sampler`` and
    ``lrd_*`` (upstream's would swallow them silently), and its ``generate_until`` runs with them in
    force, so the ``generate*`` calls inside (whose argument lists are fixed) pick them up.
    `needs_cache`: LRD is only switched into the harness's ``use_cache=True`` path."""
    if getattr(cls, "__lrd_switch__", False):
        return cls
    init, generate_until = cls.__init__, cls.generate_until  # type: ignore[misc]

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._lrd_settings, kwargs = harness_settings(kwargs)
        if needs_cache and self._lrd_settings["sampler"] == "lrd" and str(kwargs.get("use_cache")) != "True":
            raise ValueError(
                f"sampler=lrd in {cls.__name__} needs use_cache=True: with use_cache=False Fast-dLLM's harness runs "
                "Dream's non-block sampler (model/generation_utils.py), which LRD does not switch"
            )
        init(self, *args, **kwargs)

    @functools.wraps(generate_until)
    def switched_generate_until(self: Any, *args: Any, **kwargs: Any) -> Any:
        with active(self._lrd_settings):
            return generate_until(self, *args, **kwargs)

    cls.__init__ = __init__  # type: ignore[misc]
    cls.generate_until = switched_generate_until  # type: ignore[attr-defined]
    cls.__lrd_switch__ = True  # type: ignore[attr-defined]
    return cls


def llada_harness_switch(cls: type) -> type:
    """``eval_llada.py``'s ``llada_dist`` harness (all three of its generation paths)."""
    return harness_switch(cls)


def dream_harness_switch(cls: type) -> type:
    """``dream/eval.py``'s ``dream`` harness (its ``use_cache=True`` block-sampler path)."""
    return harness_switch(cls, needs_cache=True)


def v2_harness_switch(cls: type) -> type:
    """``v2/eval.py``'s ``fast_dllm_v2`` harness: its ``generate_until`` calls ``batch_sample`` (bound
    onto the model as ``mdm_sample`` when the harness is made, so `enable_v2` must come first)."""
    return harness_switch(cls)


SWITCHES = {"llada": llada_harness_switch, "dream": dream_harness_switch, "v2": v2_harness_switch}


def load_harness(model: str, root: str | None = None) -> type:
    """Enable LRD for `model` ("llada" or "dream"), import upstream's evaluation module (which
    registers its lm-eval model name) and switch its harness class."""
    if model not in HARNESSES:
        raise ValueError(f"model must be one of {sorted(HARNESSES)}, got {model!r}")
    from . import enable_dream, enable_llada, enable_v2  # type: ignore[attr-defined]

    layout = detect_layout(root)
    if model == "v2":
        enable_v2(layout.root)
    elif model == "llada":
        enable_llada(layout.root)
        _register_llada_config()
    else:
        enable_dream(layout.root)
    module_name, class_name = HARNESSES[model]
    return SWITCHES[model](getattr(importlib.import_module(module_name), class_name))


def _register_llada_config() -> None:
    """``eval_llada.py`` reads the config with a plain ``AutoConfig.from_pretrained(model_path)``: a
    local LLaDA directory without hub remote code then needs Fast-dLLM's own config class known
    under ``model_type="llada"``."""
    from transformers import AutoConfig

    configuration = importlib.import_module("model.configuration_llada")
    with contextlib.suppress(ValueError):  # already registered (by us or by the user)
        AutoConfig.register("llada", configuration.LLaDAConfig)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in HARNESSES:
        raise SystemExit(
            f"usage: python -m {__spec__.name if __spec__ else __name__} {{llada|dream|v2}} [lm-eval arguments]"
        )
    load_harness(args[0])
    from lm_eval.__main__ import cli_evaluate

    sys.argv = [f"{sys.argv[0]} {args[0]}", *args[1:]]
    cli_evaluate()


if __name__ == "__main__":
    main()
