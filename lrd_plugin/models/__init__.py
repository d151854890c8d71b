"""Model definitions: a minimal LLaDA-architecture network and a character tokenizer."""

from .llada import (
    KVCache,
    LLaDAConfig,
    LLaDAModel,
    ModelOutput,
    block_attention_mask,
    build_default_random_model,
    random_model_for,
)
from .tokenizer import CharTokenizer

__all__ = [
    "CharTokenizer",
    "KVCache",
    "LLaDAConfig",
    "LLaDAModel",
    "ModelOutput",
    "block_attention_mask",
    "build_default_random_model",
    "random_model_for",
]
