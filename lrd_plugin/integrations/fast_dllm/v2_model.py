"""A block-diffusion model of our own that speaks Fast-dLLM v2's forward protocol.

Fast-dLLM v2's model code (``Fast_dLLM_QwenForCausalLM``) ships with the checkpoint, not with the
repository, so the integration tests and benchmarks need a stand-in that takes the arguments v2's
``batch_sample`` passes: ``input_ids`` (or ``inputs_embeds``), ``use_cache``, ``past_key_values``,
``update_past_key_values``, ``block_size``, ``use_block_cache``, ``block_past_key_values`` and
``replace_position``, and that returns logits *shifted by one* (output ``i`` predicts token ``i + 1``).

`V2BlockModel` wraps the project's `LLaDAModel` in its block-diffusion attention: a token sees its own
block and every earlier block (blocks are ``block_size`` positions counted from 0). The shift is made
honestly, so that a masked block-diffusion model trained without shift decodes meaningfully inside v2's
loop: every forward appends one mask token after the query, and output ``i`` is the wrapped model's
prediction at position ``i + 1``; the appended token is hidden from the real ones and never cached.

Caches, as v2's loop uses them: ``past_key_values`` (`V2Cache`) holds the finished blocks (positions
``0 .. P-1``) and grows only with ``update_past_key_values``; with ``use_block_cache`` a forward over a
whole block returns the block's keys and values as ``block_past_key_values``, and a later forward over a
sub-block at ``replace_position`` overwrites its slice of that cache in place and attends to the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ...models import LLaDAModel


class V2Cache:
    """Per-layer keys and values ``[B, heads, T, head_dim]`` (after RoPE), in the attribute names v2's
    ``batch_sample`` edits directly (``key_cache[layer]`` / ``value_cache[layer]``) to drop finished rows."""

    def __init__(self, key_cache: list[Tensor] | None = None, value_cache: list[Tensor] | None = None) -> None:
        self.key_cache: list[Tensor] = list(key_cache or [])
        self.value_cache: list[Tensor] = list(value_cache or [])

    def __len__(self) -> int:
        return len(self.key_cache)

    def __getitem__(self, layer: int) -> tuple[Tensor, Tensor]:
        return self.key_cache[layer], self.value_cache[layer]

    def get_seq_length(self) -> int:
        return self.key_cache[0].shape[2] if self.key_cache else 0

    def keep_rows(self, keep: Tensor) -> None:
        """Drop the batch rows where `keep` [B] is False (a finished request leaves the batch)."""
        self.key_cache = [k[keep] for k in self.key_cache]
        self.value_cache = [v[keep] for v in self.value_cache]


@dataclass
class V2Output:
    """What v2's loop reads from a forward: ``logits`` [B, L, V] (shifted by one), the caches."""

    logits: Tensor
    past_key_values: V2Cache | None = None
    block_past_key_values: V2Cache | None = None


class V2BlockModel(nn.Module):
    """`LLaDAModel` in block-diffusion mode behind Fast-dLLM v2's forward protocol (see the module doc).

    ``block_size`` (v2's ``bd_size``) is the default of the forward's own ``block_size`` argument:
    upstream's loop passes it only to the forwards that fill the prefix cache."""

    def __init__(self, llada: LLaDAModel, block_size: int = 32) -> None:
        super().__init__()
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
            raise ValueError(f"block_size must be a positive int, got {block_size!r}")
        self.llada = llada
        self.block_size = block_size
        self.mask_id = llada.config.mask_token_id

    @property
    def device(self) -> torch.device:
        return self.llada.get_input_embeddings().weight.device

    @property
    def config(self) -> object:
        return self.llada.config

    def get_input_embeddings(self) -> nn.Embedding:
        return self.llada.get_input_embeddings()

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        use_cache: bool = False,
        past_key_values: V2Cache | None = None,
        update_past_key_values: bool = False,
        block_size: int | None = None,
        use_block_cache: bool = False,
        block_past_key_values: V2Cache | None = None,
        replace_position: int | None = None,
    ) -> V2Output:
        """One forward of v2's protocol; positions continue after ``past_key_values`` (and after
        ``replace_position`` inside the block when a sub-block is recomputed over the block cache)."""
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        block = self.block_size if block_size is None else block_size
        embed = self.get_input_embeddings()
        x = embed(input_ids) if inputs_embeds is None else inputs_embeds
        batch, length = x.shape[:2]
        past = past_key_values if use_cache else None
        past_length = past.get_seq_length() if past is not None else 0
        sub_block = use_block_cache and block_past_key_values is not None and len(block_past_key_values) > 0
        if sub_block and replace_position is None:
            raise ValueError("a forward over the block cache needs replace_position (the sub-block's start)")
        offset = replace_position if sub_block else 0
        start = past_length + offset

        # keys the real query sees besides itself: the prefix cache, then (sub-block) the block cache
        # without the slice being recomputed
        context: list[tuple[Tensor, Tensor]] = []
        context_positions: list[Tensor] = []
        device = x.device
        if past is not None and past_length:
            context = [past[layer] for layer in range(len(past))]
            context_positions.append(torch.arange(past_length, device=device))
        if sub_block:
            assert block_past_key_values is not None and replace_position is not None
            cached = block_past_key_values.get_seq_length()
            keep = torch.ones(cached, dtype=torch.bool, device=device)
            keep[replace_position : replace_position + length] = False
            layers = [block_past_key_values[i] for i in range(len(block_past_key_values))]
            rest = [(k[:, :, keep], v[:, :, keep]) for k, v in layers]
            if context:
                rest = [
                    (torch.cat((a[0], b[0]), 2), torch.cat((a[1], b[1]), 2)) for a, b in zip(context, rest, strict=True)
                ]
            context = rest
            context_positions.append(past_length + torch.arange(cached, device=device)[keep])

        # the query plus one appended mask token (its output is the prediction for the last position + 1)
        extra = embed.weight[self.mask_id].to(x.dtype).expand(batch, 1, -1)
        query = torch.cat((x, extra), dim=1)
        query_positions = torch.arange(start, start + length + 1, device=device)
        key_positions = torch.cat([*context_positions, query_positions])
        query_blocks = torch.div(query_positions, block, rounding_mode="floor")
        key_blocks = torch.div(key_positions, block, rounding_mode="floor")
        mask = key_blocks[None, :] <= query_blocks[:, None]
        mask[:length, -1] = False  # the appended token is invisible to the real query
        out = self.llada(
            inputs_embeds=query,
            attention_mask=mask[None, None].expand(batch, 1, -1, -1),
            position_ids=query_positions[None],
            past_key_values=tuple(context) if context else None,
            use_cache=True,
        )
        logits = out.logits[:, 1:]
        assert out.past_key_values is not None
        new = [(k[:, :, -(length + 1) : -1], v[:, :, -(length + 1) : -1]) for k, v in out.past_key_values]

        if update_past_key_values:
            past = past if past is not None else V2Cache()
            if len(past):
                past.key_cache = [torch.cat((k, n[0]), dim=2) for k, n in zip(past.key_cache, new, strict=True)]
                past.value_cache = [torch.cat((v, n[1]), dim=2) for v, n in zip(past.value_cache, new, strict=True)]
            else:
                past.key_cache, past.value_cache = [n[0] for n in new], [n[1] for n in new]
        elif use_cache and past is None:
            past = V2Cache()
        block_cache = None
        if use_block_cache:
            if sub_block:
                assert block_past_key_values is not None and replace_position is not None
                for layer, (k, v) in enumerate(new):
                    block_past_key_values.key_cache[layer][:, :, replace_position : replace_position + length] = k
                    block_past_key_values.value_cache[layer][:, :, replace_position : replace_position + length] = v
                block_cache = block_past_key_values
            else:
                block_cache = V2Cache([n[0] for n in new], [n[1] for n in new])
        return V2Output(logits=logits, past_key_values=past if use_cache else None, block_past_key_values=block_cache)

    @torch.no_grad()
    def sample_with_top_p(self, logits: Tensor, top_p: float = 0.95, temperature: float = 0.0) -> tuple[Tensor, Tensor]:
        """v2's sampling step, which the checkpoint's model class provides: ``(tokens, probabilities)``.
        Temperature 0 is the argmax of the softmax; otherwise each position draws from its top-p
        nucleus of ``softmax(logits / temperature)``, renormalised (the returned probabilities)."""
        if temperature <= 0:
            probs = torch.softmax(logits.float(), dim=-1)
            return probs.argmax(dim=-1), probs
        probs = torch.softmax(logits.float() / temperature, dim=-1)
        ordered, order = probs.sort(dim=-1, descending=True)
        mass_before = ordered.cumsum(dim=-1) - ordered
        ordered = torch.where(mass_before < top_p, ordered, torch.zeros((), device=probs.device))
        nucleus = torch.zeros_like(probs).scatter(-1, order, ordered)
        nucleus = nucleus / nucleus.sum(dim=-1, keepdim=True)
        draws = torch.multinomial(nucleus.reshape(-1, nucleus.shape[-1]), 1).reshape(nucleus.shape[:-1])
        return draws, nucleus


def random_v2_model(
    vocab_size: int, mask_id: int, *, seed: int = 0, sharpness: float = 1.0, block_size: int = 32
) -> V2BlockModel:
    """A seeded random-weight `V2BlockModel` (d_model 32, 2 layers) for protocol tests and demos.

    `sharpness` scales the output layer, so that a random model is as confident as a trained one
    (around 100, confidences spread over 0.5 .. 0.999 and a threshold rule commits several tokens per
    step). The mask token's logit is pushed to -1e4: a trained model never ranks it first, a random one
    would, and upstream's loop would then commit it."""
    from ...models import LLaDAConfig

    config = LLaDAConfig(
        d_model=32,
        n_heads=2,
        n_layers=2,
        mlp_hidden_size=64,
        vocab_size=vocab_size,
        max_sequence_length=512,
        mask_token_id=mask_id,
    )
    llada = LLaDAModel(config)
    llada.init_weights(seed)
    head = llada.transformer.ff_out
    with torch.no_grad():
        head.weight.mul_(sharpness)
    never = torch.tensor([mask_id])
    head.register_forward_hook(lambda module, inputs, output: output.index_fill(-1, never.to(output.device), -1e4))
    return V2BlockModel(llada.eval(), block_size=block_size).eval()
