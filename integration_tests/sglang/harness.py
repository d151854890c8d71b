"""What surrounds a `DllmAlgorithm` in a real SGLang server, at test size.

`TinyModelRunner` is the part of SGLang's `ModelRunner` that `DllmAlgorithm.run` touches
(``forward(forward_batch, pp_proxy_tensors)`` and ``model.get_input_embeddings()``), wrapping a tiny
LLaDA of this project in its block-diffusion attention (``block_size``), as SGLang serves LLaDA2 and
SDAR: a block sees itself and the blocks before it, never a later one. It builds every forward's
inputs with SGLang's own `ModelRunner._extend_forward_kwargs` (token embeddings from SGLang's
`VocabParallelEmbedding`, then ``replace_embeds`` scattered at ``replace_positions``) and runs one
block per request per forward against that request's KV cache. As in SGLang's paged cache, the KV a
finished block leaves behind is the one its *last* forward computed, so a mixture leaking into the
cache would change later blocks.

`serve` stands in for the scheduler: it forms each round's `ForwardBatch` (SGLang's class) the way
SGLang's dLLM request mixin lays blocks out (complete prompt blocks prefilled, the prompt's tail and
the first masks sharing a block), calls the algorithm's `run` (synchronous, or FDFO with the states
carried per request), and appends each finished block to the request's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from sglang.srt.layers.logits_processor import LogitsProcessorOutput
from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding
from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode
from sglang.srt.model_executor.model_runner import ModelRunner, ModelRunnerOutput
from sglang.srt.runtime_context import get_parallel

from lrd_plugin.models import LLaDAModel


class _Model:
    """``model_runner.model``: what dLLM algorithms and input preparation ask of the model."""

    def __init__(self, embed: VocabParallelEmbedding) -> None:
        self._embed = embed

    def get_input_embeddings(self) -> VocabParallelEmbedding:
        return self._embed


@dataclass
class ForwardRecord:
    rids: list[str]
    replaced: dict[str, int]  # rid -> positions fed a replacement embedding in this forward


class TinyModelRunner:
    is_generation = True
    support_pp = False
    # SGLang's own input preparation, borrowed as plain functions of this runner
    _pp_kwargs = ModelRunner._pp_kwargs
    _extend_forward_kwargs = ModelRunner._extend_forward_kwargs

    def __init__(self, net: LLaDAModel, block_size: int | None = None) -> None:
        self.net = net.eval()
        self.block_size = block_size  # None: full attention over what the runner is given
        table = net.get_input_embeddings().weight
        embed = VocabParallelEmbedding(table.shape[0], table.shape[1], params_dtype=table.dtype, enable_tp=False)
        with torch.no_grad():
            embed.weight[: table.shape[0]].copy_(table)
        self.model = _Model(embed)
        self.cache: dict[str, Any] = {}  # rid -> KV of the committed prefix
        self.pending: dict[str, tuple[Any, int]] = {}  # rid -> (KV incl. the block, replaced count)
        self.forwards: list[ForwardRecord] = []
        self.persisted: list[tuple[str, int]] = []  # (rid, replaced count of the block's last forward)

    @torch.no_grad()
    def prefill(self, rid: str, ids: list[int]) -> None:
        """Complete prompt blocks, encoded once before the request's first dLLM block."""
        if ids:
            out = self.net(input_ids=torch.tensor([ids]), use_cache=True, block_size=self.block_size)
            self.cache[rid] = out.past_key_values

    @torch.no_grad()
    def forward(self, forward_batch: ForwardBatch, pp_proxy_tensors: Any = None) -> ModelRunnerOutput:
        batch = forward_batch.batch_size
        # one process, no tensor-parallel group (SGLang's embedding asks for it even at tp_size 1)
        with get_parallel().override(tp_group=None):
            kwargs = self._extend_forward_kwargs(forward_batch, pp_proxy_tensors)
            embeds = kwargs.get("input_embeds")
            if embeds is None:
                embeds = self.model.get_input_embeddings()(forward_batch.input_ids)
        embeds = embeds.view(batch, -1, embeds.shape[-1])
        replaced = torch.zeros(embeds.shape[0] * embeds.shape[1], dtype=torch.bool)
        if forward_batch.replace_positions is not None:
            replaced[forward_batch.replace_positions] = True
        counts = replaced.view(batch, -1).sum(dim=1).tolist()
        positions = forward_batch.positions.view(batch, -1)
        logits = []
        for i, rid in enumerate(forward_batch.rids):
            out = self.net(
                inputs_embeds=embeds[i : i + 1],
                past_key_values=self.cache.get(rid),
                position_ids=positions[i : i + 1],
                use_cache=True,
                block_size=self.block_size,
            )
            self.pending[rid] = (out.past_key_values, counts[i])
            logits.append(out.logits[0])
        self.forwards.append(
            ForwardRecord(list(forward_batch.rids), dict(zip(forward_batch.rids, counts, strict=True)))
        )
        output = LogitsProcessorOutput(next_token_logits=None, full_logits=torch.cat(logits))
        return ModelRunnerOutput(logits_output=output, can_run_graph=False)

    def persist(self, rid: str) -> None:
        """The block is done: its last forward's KV stays in the cache."""
        kv, replaced = self.pending.pop(rid)
        self.cache[rid] = kv
        self.persisted.append((rid, replaced))

    def forwards_of(self, rid: str) -> int:
        return sum(rid in record.rids for record in self.forwards)


@dataclass
class Request:
    rid: str
    prompt: list[int]
    blocks: int  # blocks to generate at most (SGLang's max_new_tokens, in blocks)
    eos: int | None = None  # SGLang's stop token: a finished block that holds it ends the request
    output: list[int] = field(default_factory=list)
    incomplete: list[int] | None = None  # FDFO: the unfinished block as the last round left it
    state: Any = None  # FDFO: what SGLang keeps in req.dllm_algo_state
    finished_blocks: int = 0
    block_done_rounds: list[int] = field(default_factory=list)
    states_seen: list[Any] = field(default_factory=list)  # FDFO: the state passed in each round

    @property
    def committed(self) -> list[int]:
        return self.prompt + self.output

    @property
    def stopped(self) -> bool:
        """Ended at its stop token: output grows a finished block at a time, as SGLang checks it."""
        return self.eos is not None and self.eos in self.output


def serve(algorithm: Any, runner: TinyModelRunner, requests: list[Request], *, max_rounds: int = 10_000) -> int:
    """Decode every request's blocks, one `algorithm.run` per scheduler round; returns the rounds."""
    n, mask = algorithm.block_size, algorithm.mask_id
    for request in requests:
        runner.prefill(request.rid, request.prompt[: len(request.prompt) // n * n])
    rounds = 0
    while active := [r for r in requests if not r.stopped and r.finished_blocks < r.blocks]:
        rounds += 1
        if rounds > max_rounds:
            raise RuntimeError(f"no progress after {max_rounds} rounds")
        starts = [len(r.committed) // n * n for r in active]
        blocks = []
        for r, start in zip(active, starts, strict=True):
            tail = r.committed[start:]
            blocks.append(r.incomplete if r.incomplete is not None else tail + [mask] * (n - len(tail)))
        forward_batch = _forward_batch(active, blocks, starts, n, mask)
        states = None
        if algorithm.fdfo:
            states = [r.state for r in active]
            for r in active:
                r.states_seen.append(r.state)
        _, next_ids, accepted, states_out, _ = algorithm.run(runner, forward_batch, states)
        for i, (r, start) in enumerate(zip(active, starts, strict=True)):
            if algorithm.fdfo:
                if accepted[i] != n:
                    r.incomplete, r.state = list(next_ids[i]), states_out[i]
                    continue
                if states_out[i] is not None:
                    raise AssertionError(f"{r.rid}: a finished request's state was carried on")
                generated = list(next_ids[i])[len(r.committed) - start :]
            else:
                generated = next_ids[i].tolist()
            r.output += generated
            r.incomplete, r.state = None, None
            r.finished_blocks += 1
            r.block_done_rounds.append(rounds)
            runner.persist(r.rid)
    return rounds


def _forward_batch(
    active: list[Request], blocks: list[list[int]], starts: list[int], n: int, mask: int
) -> ForwardBatch:
    batch = len(active)
    positions = torch.tensor([list(range(s, s + n)) for s in starts]).flatten()
    seq_lens = torch.tensor([s + n for s in starts])
    forward_batch = ForwardBatch(
        forward_mode=ForwardMode.DLLM_EXTEND,
        batch_size=batch,
        input_ids=torch.tensor(blocks).flatten(),
        req_pool_indices=torch.arange(batch),
        seq_lens=seq_lens,
        out_cache_loc=torch.arange(batch * n),
        seq_lens_sum=int(seq_lens.sum()),
        positions=positions,
        rids=[r.rid for r in active],
    )
    if any(mask in r.committed for r in active):
        # SGLang's rule: with a literal mask id among committed tokens, mark them as prompt
        committed = torch.tensor([len(r.committed) for r in active])
        forward_batch.dllm_prompt_mask = positions.view(batch, n) < committed[:, None]
    return forward_batch
