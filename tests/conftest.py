"""Shared fixtures: tiny LLaDA-architecture models with random weights, built offline."""

from __future__ import annotations

import pytest
import torch

from lrd_plugin.models import LLaDAConfig, LLaDAModel

VOCAB, MASK = 40, 39


def tiny_llada(seed: int = 0, sharpness: float = 60.0, n_kv_heads: int | None = None) -> LLaDAModel:
    """A random tiny LLaDA whose output head is scaled up so predictions are confident enough to
    exercise threshold and factor commits (a default init gives near-uniform logits)."""
    config = LLaDAConfig(
        d_model=32,
        n_heads=4,
        n_kv_heads=n_kv_heads,
        n_layers=2,
        mlp_hidden_size=64,
        vocab_size=VOCAB,
        max_sequence_length=256,
        mask_token_id=MASK,
        eos_token_id=1,
        pad_token_id=0,
    )
    model = LLaDAModel(config)
    model.init_weights(seed)
    with torch.no_grad():
        model.transformer.ff_out.weight.mul_(sharpness)
    return model.eval()


@pytest.fixture(autouse=True)
def _single_thread_determinism():
    torch.manual_seed(0)
    yield
