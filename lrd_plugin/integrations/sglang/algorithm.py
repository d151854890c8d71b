"""`LRD`, an SGLang `DllmAlgorithm`: Latent Refinement Decoding over SGLang's block KV cache.

SGLang owns the loops (`DllmAlgorithm.run`: synchronous, or FDFO with one forward per scheduler
round), the KV cache and the batching; this class only translates between them and `LRDSampler`:

- `init_step_state` gives each request a `RequestState`; FDFO carries it across rounds in
  ``req.dllm_algo_state`` and drops it when the block is reported done.
- `step` hands the batch's block logits to one `LRDSampler.step` per forward, as LowConfidence takes
  one step per batch; it commits through SGLang's `LowConfidence` rule (`low_confidence`) and writes
  the commits into ``forward_batch.input_ids``. The requests' block states live as rows of one
  `BlockState`, each request keeping its row; when the batch's requests are not the rows of one state
  (FDFO: a request starts a new block, another joins or leaves) the rows are regrouped
  (`BlockState.regroup`). With every LRD feature off nothing is carried between forwards
  (`_batch_step`).
- `prepare_inputs` feeds the still-masked positions their mixture embeddings through
  ``replace_embeds`` / ``replace_positions``, which every forward path honours (a decode CUDA graph
  would ignore ``input_embeds``; ``replace_embeds`` makes SGLang run that forward eagerly). Under
  tensor parallelism each rank embeds its vocabulary shard's share and the shares are all-reduced.
- KV safety: a block is reported done only by the step *after* its last commit, i.e. after a
  forward whose inputs were hard tokens only, so no KV computed from a mixture stays in the cache
  (the contract of `DllmAlgorithm.step`; LowConfidence spends the same extra forward).

With refinement, mixing and early stop off it reproduces `LowConfidence` token for token and
forward for forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from sglang.srt.dllm.algorithm.base import DllmAlgorithm
from sglang.srt.dllm.config import DllmConfig
from torch import Tensor

from ...mixture import MixtureRecipe
from ...sampler import BlockState, LRDSampler
from . import settings

# Masked-diffusion architectures SGLang 0.5.23 serves with a mask token (DLLM_PARAMS); DiffusionGemma
# has none (mask_id -1) and needs its own Gemma4Renoise.
SUPPORTED_ARCHITECTURES = ("LLaDA2MoeModelLM", "SDARForCausalLM", "SDARMoeForCausalLM")


@dataclass
class RequestState:
    """One request's LRD state for its current block: row `row` of `block`, a state shared by the
    requests stepped together (None until the block's first forward)."""

    block: BlockState | None = None
    row: int = 0


class LRD(DllmAlgorithm):
    """``--dllm-algorithm LRD --dllm-algorithm-config lrd.yaml`` (keys: LRDConfig fields, block_size)."""

    supported_architectures = SUPPORTED_ARCHITECTURES

    def __init__(self, config: DllmConfig) -> None:
        super().__init__(config)
        self.lrd = settings.lrd_config(config.algorithm_config)
        # No embedding table here: the engine's (possibly vocabulary-sharded) table is only reachable
        # through the model runner, in `prepare_inputs`.
        self.sampler = LRDSampler(self.lrd, None, config.mask_id)
        # every LRD feature off: a step reads nothing from earlier forwards (the LowConfidence rule
        # below ignores the step count), so the whole batch can take it at once with a fresh state
        self.stateless = self.lrd.is_base_policy

    # --- launch and admission --------------------------------------------------------------------
    @classmethod
    def configure_server_args(cls, server_args: Any) -> None:
        """Check the YAML at launch, before any model is loaded."""
        settings.load(getattr(server_args, "dllm_algorithm_config", None))

    @classmethod
    def validate_request(cls, req: Any) -> str | None:
        """Refuse request features whose effect LRD's commit rule would silently drop."""
        params = req.sampling_params
        unsupported = [
            name
            for name, default in (
                ("frequency_penalty", 0.0),
                ("presence_penalty", 0.0),
                ("repetition_penalty", 1.0),
                ("min_new_tokens", 0),
                ("min_p", 0.0),
            )
            if getattr(params, name, default) != default
        ]
        unsupported += [
            name
            for name in ("logit_bias", "json_schema", "regex", "ebnf", "structural_tag")
            if getattr(params, name, None)
        ]
        unsupported += [name for name in ("return_logprob", "custom_logit_processor") if getattr(req, name, None)]
        if not unsupported:
            return None
        return (
            f"the LRD diffusion algorithm does not support {', '.join(unsupported)}: it commits each block's "
            "tokens greedily by confidence (as LowConfidence), so these would be silently ignored"
        )

    def max_steps(self, block_size: int) -> int:
        # every forward LRD may spend on a block, plus the hard-token forward that persists it
        return self.sampler.max_forwards_per_block(block_size) + 1

    # --- the loop's hooks ------------------------------------------------------------------------
    def init_step_state(self, forward_batch: Any) -> list[Any]:
        return [RequestState() for _ in range(forward_batch.batch_size)]

    def step(self, forward_batch: Any, full_logits: Tensor, states: list[Any]) -> list[bool]:
        batch, n = forward_batch.batch_size, self.block_size
        logits = full_logits.view(batch, n, full_logits.shape[-1])
        input_ids = forward_batch.input_ids.view(batch, n)
        open_ = self._open_positions(forward_batch)
        if self.stateless:
            return self._batch_step(logits, input_ids, open_)
        has_open = open_.any(dim=1)
        block = self._batch_block(states, input_ids, open_, has_open)
        commit = self.sampler.step(block, logits, select=partial(self.low_confidence, logits))
        input_ids.copy_(torch.where(commit, block.tokens, input_ids))
        # a request without an open position is done: the forward just run saw hard tokens only, so
        # its KV may stay (one device sync per step, not one per request)
        return (~has_open).tolist()

    def _batch_block(self, states: list[Any], input_ids: Tensor, open_: Tensor, has_open: Tensor) -> BlockState:
        """The block state whose row i is request i: the requests' shared state when they are its
        rows in order (the synchronous loop, an unchanged FDFO batch), else their rows regrouped,
        a request new to its block starting one (without an open position it sits the step out)."""
        shared = states[0].block
        rows_in_order = all(state.block is shared and state.row == i for i, state in enumerate(states))
        if shared is not None and shared.tokens.shape[0] == len(states) and rows_in_order:
            return shared
        parts, order = [], []  # (state, rows) taken in turn; the request of each taken row
        fresh = [i for i, state in enumerate(states) if state.block is None]
        if fresh:
            index = torch.tensor(fresh, device=input_ids.device)
            tokens = self._block_tokens(input_ids[index], open_[index])
            started = self.sampler.init_block(tokens, self.block_size, active=has_open[index])
            parts.append((started, torch.arange(len(fresh), device=input_ids.device)))
            order += fresh
        for block, rows, requests in _by_block(states):
            parts.append((block, rows))
            order += requests
        block = BlockState.regroup(parts)
        if order != list(range(len(states))):  # back to the batch's order
            block = BlockState.regroup([(block, torch.tensor(order, device=input_ids.device).argsort())])
        for i, state in enumerate(states):
            state.block, state.row = block, i
        return block

    def _batch_step(self, logits: Tensor, input_ids: Tensor, open_: Tensor) -> list[bool]:
        """`step` with every LRD feature off: one `LRDSampler.step` over the whole batch, as
        LowConfidence takes its step, instead of one per request (their cost grows with the batch).
        Requests without an open position sit it out and are reported done, as in `step`."""
        has_open = open_.any(dim=1)
        block = self.sampler.init_block(self._block_tokens(input_ids, open_), self.block_size, active=has_open)
        commit = self.sampler.step(block, logits, select=partial(self.low_confidence, logits))
        input_ids.copy_(torch.where(commit, block.tokens, input_ids))
        return (~has_open).tolist()

    def prepare_inputs(self, model_runner: Any, forward_batch: Any, states: list[Any]) -> None:
        """Each request's open positions get their mixtures, taken per shared block state from the
        rows of this batch's requests (in FDFO the batch need not be the state's rows)."""
        recipes, positions = [], []
        for block, rows, requests in _by_block(states):
            if block.recipe is None:
                continue
            place = torch.full((block.tokens.shape[0],), -1, device=rows.device)  # state row -> batch place
            place[rows] = torch.tensor(requests, device=rows.device)
            open_ = (block.tokens == self.mask_id) & (place >= 0).unsqueeze(-1)
            recipes.append(block.recipe.select(open_))
            row, column = open_.nonzero(as_tuple=True)
            positions.append(place[row] * self.block_size + column)
        if not sum(len(recipe.alpha) for recipe in recipes):
            # a stale replacement must never reach a hard-token forward
            forward_batch.replace_embeds = None
            forward_batch.replace_positions = None
            return
        embed = model_runner.model.get_input_embeddings()
        forward_batch.replace_embeds = embed_mixture(MixtureRecipe.cat(recipes), embed, self.mask_id)
        forward_batch.replace_positions = torch.cat(positions).to(forward_batch.input_ids.device)

    # --- pieces ----------------------------------------------------------------------------------
    def low_confidence(
        self, raw_logits: Tensor, block_logits: Tensor, candidates: Tensor, block_tokens: Tensor, decode_step: Tensor
    ) -> tuple[Tensor, Tensor]:
        """SGLang's LowConfidence commit: every candidate whose greedy token's probability exceeds
        ``threshold``, or else the single most confident candidate. The probability is taken over the
        model's whole vocabulary (`raw_logits`), as LowConfidence does; the proposal never is the mask
        token (`block_logits` has it at -inf), where LowConfidence would write the mask back and spend
        a forward for nothing. Identical to LowConfidence whenever the model does not predict the mask."""
        proposals = block_logits.argmax(dim=-1)
        probs = torch.softmax(raw_logits, dim=-1)
        confidence = probs.gather(-1, proposals.unsqueeze(-1)).squeeze(-1)
        confidence = torch.where(candidates, confidence, -torch.inf)
        commit = confidence > self.lrd.threshold
        best = torch.zeros_like(commit)
        best.scatter_(1, confidence.argmax(dim=1, keepdim=True), True)
        commit = torch.where(commit.any(dim=1, keepdim=True), commit, best & candidates)
        return proposals, commit

    def _open_positions(self, forward_batch: Any) -> Tensor:
        """[B, n] positions still to denoise; a literal mask id in the prompt is not one."""
        ids = forward_batch.input_ids.view(forward_batch.batch_size, self.block_size)
        open_ = ids == self.mask_id
        if forward_batch.dllm_prompt_mask is not None:
            open_ &= ~forward_batch.dllm_prompt_mask
        return open_

    def _block_tokens(self, ids: Tensor, open_: Tensor) -> Tensor:
        """[b, n] blocks for `LRDSampler`: a committed literal mask id becomes a stand-in token so the
        sampler never reopens it (only committed positions are ever written back)."""
        stand_in = 0 if self.mask_id != 0 else 1
        return torch.where((ids == self.mask_id) & ~open_, stand_in, ids)


def _by_block(states: list[Any]) -> list[tuple[BlockState, Tensor, list[int]]]:
    """The requests' shared block states, each with the rows its requests hold and those requests'
    places in the batch (requests without a block state are left out)."""
    groups: dict[int, tuple[BlockState, list[int], list[int]]] = {}
    for i, state in enumerate(states):
        if state.block is not None:
            _, rows, requests = groups.setdefault(id(state.block), (state.block, [], []))
            rows.append(state.row)
            requests.append(i)
    return [
        (block, torch.tensor(rows, device=block.tokens.device), requests) for block, rows, requests in groups.values()
    ]


def embedding_shard(embed: Any) -> tuple[Tensor, int, int]:
    """(rows of the original vocabulary this rank holds, first row's token id, tensor-parallel size)
    of SGLang's `VocabParallelEmbedding`, or of a plain `nn.Embedding`."""
    weight = embed.weight
    shard = getattr(embed, "shard_indices", None)
    if shard is None:
        return weight, 0, 1
    start, end = shard.org_vocab_start_index, shard.org_vocab_end_index
    return weight[: end - start], start, int(getattr(embed, "tp_size", 1))


def embed_mixture(recipe: MixtureRecipe, embed: Any, mask_id: int) -> Tensor:
    """Mixture embeddings from the engine's embedding layer; with a vocabulary-parallel layer each
    rank computes its shard's share and the shares are summed across ranks."""
    table, first_row, tp_size = embedding_shard(embed)
    mixed = recipe.embed(table, mask_id, first_row if tp_size > 1 else None)
    if tp_size > 1:
        from sglang.srt.distributed import tensor_model_parallel_all_reduce

        mixed = tensor_model_parallel_all_reduce(mixed)
    return mixed.to(table.dtype)
