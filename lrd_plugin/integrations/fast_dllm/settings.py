"""LRD settings as Fast-dLLM callers pass them: ``sampler="lrd"`` plus ``lrd_<field>=value``.

The decoding policy (fixed steps, threshold, factor) and the temperature stay Fast-dLLM's own
arguments, so one evaluation command changes by one argument; the LRD fields that would duplicate
them are refused rather than silently ignored.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields
from typing import Any

from ...config import LRDConfig

SAMPLERS = (None, "default", "lrd")
PREFIX = "lrd_"
# Set through Fast-dLLM's own arguments (steps, threshold, factor, temperature).
OWNED_BY_UPSTREAM = ("policy", "steps_per_block", "threshold", "factor", "temperature")
ALLOWED = tuple(sorted(f.name for f in fields(LRDConfig) if f.name not in OWNED_BY_UPSTREAM))
_DEFAULTS = LRDConfig()  # frozen: shared by every call that names no setting (one validation saved per call)


# Settings an evaluation harness puts in force while its ``generate_until`` runs: upstream's harnesses
# call ``generate*`` with a fixed argument list, so the sampler choice cannot travel as an argument.
_ACTIVE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("lrd_fast_dllm", default=None)


@contextlib.contextmanager
def active(settings: dict[str, Any]) -> Iterator[None]:
    """Make ``{"sampler": ..., "lrd_<field>": ...}`` the default of every switched call inside."""
    token = _ACTIVE.set(settings)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def with_active(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` over the settings in force (explicit arguments win)."""
    current = _ACTIVE.get()
    return kwargs if current is None else {**current, **kwargs}


def harness_settings(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an lm-eval harness's ``**kwargs`` into LRD settings (``sampler``, ``lrd_*``), checked
    now so that a typo fails at start-up rather than after the model has loaded, and the rest."""
    lrd_values, rest = split_lrd_kwargs(kwargs)
    sampler = rest.pop("sampler", None)
    if check_sampler(sampler):
        lrd_config(lrd_values)
    elif lrd_values:
        raise ValueError(f"LRD settings {sorted(PREFIX + k for k in lrd_values)} were given without sampler=lrd")
    return {"sampler": sampler, **{PREFIX + k: v for k, v in lrd_values.items()}}, rest


def check_sampler(sampler: object) -> bool:
    """True when LRD is requested; None / "default" keep upstream's own sampler."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {list(SAMPLERS)}, got {sampler!r}")
    return sampler == "lrd"


def split_lrd_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``lrd_*`` keys without the prefix, everything else)."""
    lrd = {k[len(PREFIX) :]: v for k, v in kwargs.items() if k.startswith(PREFIX)}
    rest = {k: v for k, v in kwargs.items() if not k.startswith(PREFIX)}
    return lrd, rest


def switch(
    function: Callable[..., Any], run_lrd: Callable[[dict[str, Any], dict[str, Any], Any], Any]
) -> Callable[..., Any]:
    """Wrap an upstream function: with ``sampler`` absent, None or "default" it is called exactly as it
    was (LRD settings then are an error); ``sampler="lrd"`` calls ``run_lrd(arguments, lrd_values,
    lrd_config)`` with every argument bound by name, upstream's defaults applied. Idempotent."""
    if getattr(function, "__lrd_switch__", False):
        return function
    signature = inspect.signature(function)

    def switched(*args: Any, **kwargs: Any) -> Any:
        kwargs = with_active(kwargs)
        sampler, lrd_config = kwargs.pop("sampler", None), kwargs.pop("lrd_config", None)
        lrd_values, kwargs = split_lrd_kwargs(kwargs)
        if not check_sampler(sampler):
            if lrd_values or lrd_config is not None:
                raise ValueError(f"LRD settings {sorted(lrd_values)} were given without sampler='lrd'")
            return function(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return run_lrd(dict(bound.arguments), lrd_values, lrd_config)

    switched.__wrapped__ = function  # type: ignore[attr-defined]
    switched.__lrd_switch__ = True  # type: ignore[attr-defined]
    switched.__name__ = function.__name__
    switched.__qualname__ = function.__qualname__
    switched.__doc__ = function.__doc__
    return switched


def lrd_config(
    values: Mapping[str, Any], config: LRDConfig | Mapping[str, Any] | None = None, *, whole_answer: bool = True
) -> LRDConfig:
    """An LRDConfig from the package defaults (or `config`) with `values` (un-prefixed field names)
    on top. Unknown names and policy fields are errors that list what is allowed.

    `whole_answer` False is a loop that predicts only the current block (Fast-dLLM v2's block loop): there the
    early stop's *default* scope is ``block``; a scope the caller names is kept (and checked)."""
    named_scope = "early_stop_scope" in values or isinstance(config, LRDConfig)
    named_scope = named_scope or (isinstance(config, Mapping) and "early_stop_scope" in config)
    if not whole_answer and not named_scope:
        config = {**(config or {}), "early_stop_scope": "block"}
    if config is None:
        base = _DEFAULTS
    elif isinstance(config, LRDConfig):
        base = config
    elif isinstance(config, Mapping):
        base = LRDConfig.from_dict(dict(config))
    else:
        raise TypeError(f"lrd_config must be an LRDConfig or a dict of its fields, got {type(config).__name__}")
    for name in values:
        if name in OWNED_BY_UPSTREAM:
            raise ValueError(
                f"{PREFIX}{name} is set by Fast-dLLM's own arguments (steps, threshold, factor, temperature); "
                f"LRD settings allowed here: {[PREFIX + a for a in ALLOWED]}"
            )
        if name not in ALLOWED:
            raise ValueError(f"unknown LRD setting {PREFIX}{name}; allowed: {[PREFIX + a for a in ALLOWED]}")
    if not values:
        return base
    return base.replace(**{name: _coerce(base, name, value) for name, value in values.items()})


def _coerce(base: LRDConfig, name: str, value: Any) -> Any:
    """lm-eval's ``--model_args`` arrive as strings or loosely typed scalars: turn "0.2" into a
    float, "False" into a bool, 20 into 20.0 where the field is a float; the config validates."""
    current = getattr(base, name)
    if isinstance(current, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return value
    if isinstance(current, float) and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(current, int) and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    return value
