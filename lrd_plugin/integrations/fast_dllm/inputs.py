"""What an LRD step feeds Fast-dLLM's models, shared by the LLaDA and Dream loops."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ...sampler import BlockState, LRDSampler


def model_inputs(sampler: LRDSampler, state: BlockState, ids: Tensor, block_start: int, model: Any) -> dict[str, Any]:
    """Token ids while no mixture exists (exactly what upstream feeds), else embeddings with the
    block's open positions replaced by their mixtures. `block_start` is the block's column in `ids`."""
    if state.mixture is None:
        return {"input_ids": ids}
    embeds = model.get_input_embeddings()(ids)
    block = slice(block_start, block_start + state.block_length)
    embeds[:, block] = sampler.block_inputs(state, embeds[:, block])
    return {"input_ids": None, "inputs_embeds": embeds}
