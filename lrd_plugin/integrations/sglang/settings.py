"""The ``--dllm-algorithm-config`` YAML of ``--dllm-algorithm LRD``: LRDConfig fields plus ``block_size``.

SGLang reads ``block_size`` itself; everything else is LRD's. Commits follow SGLang's
``LowConfidence`` rule (every masked position whose confidence exceeds ``threshold``, at least one),
so ``threshold`` keeps LowConfidence's key and default (0.95) and one YAML serves both algorithms. The
LRD fields that would change that rule are refused instead of silently ignored. Pure Python: the
checks run (and are tested) without SGLang installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from ...config import LRDConfig

# SGLang's LowConfidence default, so an empty YAML means the same threshold under both algorithms.
DEFAULT_THRESHOLD = 0.95
# Fixed by the engine: LowConfidence's greedy threshold rule commits, one block is decoded per round.
REFUSED = {
    "policy": "commits follow SGLang's LowConfidence rule; set `threshold`",
    "steps_per_block": "commits follow SGLang's LowConfidence rule; set `threshold`",
    "factor": "commits follow SGLang's LowConfidence rule; set `threshold`",
    "temperature": "SGLang's dLLM commit rule is greedy (argmax), as LowConfidence's",
}
ENGINE_KEYS = ("block_size",)


def allowed_keys() -> list[str]:
    return sorted([f.name for f in fields(LRDConfig) if f.name not in REFUSED] + list(ENGINE_KEYS))


def lrd_config(algorithm_config: Mapping[str, Any] | None) -> LRDConfig:
    """The LRDConfig a parsed YAML mapping asks for; every error names the key and what is allowed."""
    if algorithm_config is None:
        algorithm_config = {}
    if not isinstance(algorithm_config, Mapping):
        raise ValueError(
            f"--dllm-algorithm-config for LRD must be a YAML mapping of {allowed_keys()}, "
            f"got {type(algorithm_config).__name__}"
        )
    values = dict(algorithm_config)
    allowed = allowed_keys()
    for key in values:
        if not isinstance(key, str):
            raise ValueError(f"--dllm-algorithm-config key {key!r} is not a name; allowed keys: {allowed}")
        if key in REFUSED:
            raise ValueError(f"--dllm-algorithm-config key {key!r} is not accepted by LRD in SGLang: {REFUSED[key]}")
        if key not in allowed:
            raise ValueError(f"unknown --dllm-algorithm-config key {key!r} for LRD; allowed keys: {allowed}")
    block_size = values.pop("block_size", None)
    if block_size is not None and (isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1):
        raise ValueError(f"block_size must be an integer >= 1, got {block_size!r}")
    if values.get("early_stop_scope", "block") != "block":
        raise ValueError(
            f"early_stop_scope must be 'block' in SGLang (the engine decodes one block per round, so later "
            f"positions do not exist yet), got {values['early_stop_scope']!r}"
        )
    values.setdefault("threshold", DEFAULT_THRESHOLD)
    values.setdefault("early_stop_scope", "block")
    try:
        return LRDConfig(policy="threshold", **values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid --dllm-algorithm-config for LRD: {exc}") from exc


def load(path: str | Path | None) -> LRDConfig:
    """Read and check the YAML file (None: every default)."""
    if path is None:
        return lrd_config({})
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--dllm-algorithm-config {str(path)!r} is not a file")
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - SGLang itself requires PyYAML here
        raise ImportError("reading --dllm-algorithm-config needs PyYAML: pip install pyyaml") from exc
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"--dllm-algorithm-config {str(path)!r} is not valid YAML: {exc}") from exc
    return lrd_config(data)
