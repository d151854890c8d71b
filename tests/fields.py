"""A tiny bidirectional "random field" denoiser for property tests.

Its logits are a fixed random function of each row's input embeddings (a per-position term plus a
row-wide mean, so predictions react to commits and mixtures like a bidirectional model's). Rows
are computed one at a time, so batching cannot change floating-point results: what the tests
check is the sampler's own per-sequence bookkeeping. Its KV cache stores the prefix inputs,
which makes a prefix-cache run exactly equal to a full run.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


class RandomField:
    def __init__(
        self,
        vocab: int,
        dim: int,
        mask_id: int,
        *,
        seed: int = 0,
        sharpness: float = 4.0,
        shift: int = 0,
        max_len: int = 256,
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        self.embedding = nn.Embedding(vocab, dim)
        self.embedding.weight.data = torch.randn(vocab, dim, generator=g)
        self.positions = torch.randn(max_len, dim, generator=g) * 0.5
        self.mix = torch.randn(dim, dim, generator=g) / dim**0.5
        self.head = torch.randn(dim, vocab, generator=g) * sharpness / dim**0.5
        self.mask_id = mask_id
        self.shift = shift
        self.supports_cache = True
        self.calls: list[tuple[int, int]] = []  # (new length, cached length) per forward

    def embedding_table(self) -> Tensor:
        return self.embedding.weight

    def forward(
        self,
        inputs_embeds: Tensor,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        past = past_key_values[0][0][:, 0] if past_key_values is not None else inputs_embeds[:, :0]
        self.calls.append((inputs_embeds.shape[1], past.shape[1]))
        full = torch.cat([past, inputs_embeds], dim=1)
        total = full.shape[1]
        if position_ids is None:
            position_ids = torch.arange(total - inputs_embeds.shape[1], total).expand(full.shape[0], -1)
        keys = torch.ones(full.shape[:2]) if attention_mask is None else attention_mask.float()
        rows = []
        for r in range(full.shape[0]):
            ctx = (full[r] * keys[r, :, None]).sum(0) / keys[r].sum()
            h = inputs_embeds[r] + self.positions[position_ids[r]] + torch.tanh(ctx @ self.mix)
            rows.append(torch.tanh(h) @ self.head)
        cache = ((full.unsqueeze(1), full.unsqueeze(1)),) if use_cache else None
        return torch.stack(rows), cache

    def truncate_cache(self, cache: Any, length: int) -> Any:
        return tuple(tuple(t[:, :, :length] for t in layer) for layer in cache)
