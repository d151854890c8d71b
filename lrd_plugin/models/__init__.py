"""Model definitions: a minimal LLaDA-architecture network and its tokenizers (character, byte-level BPE)."""

from .llada import (
    KVCache,
    LLaDAConfig,
    LLaDAModel,
    ModelOutput,
    block_attention_mask,
    build_default_random_model,
    random_model_for,
)
from .tokenizer import BPETokenizer, CharTokenizer, load_tokenizer

__all__ = [
    "BPETokenizer",
    "CharTokenizer",
    "KVCache",
    "LLaDAConfig",
    "LLaDAModel",
    "ModelOutput",
    "block_attention_mask",
    "build_default_random_model",
    "load_tokenizer",
    "random_model_for",
]
