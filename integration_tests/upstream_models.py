"""Tiny random models built from upstream Fast-dLLM's own classes, shared by the integration tests."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

LLADA_MASK = 150


def never_predict(mask_id: int) -> Callable[[Any, Any, Tensor], Tensor]:
    """A forward hook on an output head that pushes the mask token's logit to -1e4: a trained model
    never ranks it first, a random one does, and upstream would then commit it."""
    return lambda module, inputs, output: output.index_fill(-1, torch.tensor([mask_id]), -1e4)


def tiny_llada(modeling: ModuleType, configuration: ModuleType, seed: int = 0) -> Any:
    """Upstream's ``LLaDAModelLM`` (vocab 160, mask 150), random weights, mask never predicted."""
    config = configuration.LLaDAConfig(
        d_model=64,
        n_heads=4,
        n_layers=2,
        mlp_hidden_size=128,
        activation_type="silu",
        block_type="llama",
        layer_norm_type="rms",
        rope=True,
        vocab_size=160,
        embedding_size=160,
        weight_tying=False,
        attention_dropout=0.0,
        residual_dropout=0.0,
        embedding_dropout=0.0,
        max_sequence_length=512,
        mask_token_id=LLADA_MASK,
    )
    torch.manual_seed(seed)
    model = modeling.LLaDAModelLM(config, init_params=True).eval()
    model.model.transformer.ff_out.register_forward_hook(never_predict(LLADA_MASK))
    return model
