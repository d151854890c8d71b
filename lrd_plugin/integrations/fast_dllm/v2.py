"""LRD inside Fast-dLLM v2's block sampler: ``batch_sample(..., sampler="lrd", lrd_<field>=...)``.

Fast-dLLM v2 (``v2/generation_functions.py``, upstream a9b81e4) decodes a block-diffusion model block
by block over a prefix cache of finished blocks. Each block is split into sub-blocks decoded in turn;
every forward predicts with logits shifted by one (output ``i`` predicts token ``i + 1``); a step commits
every masked position of the sub-block whose ``sample_with_top_p`` probability exceeds ``threshold``
(at least the most probable one); with ``use_block_cache`` the block's keys and values are kept and
only the sub-block is recomputed once its first token is known. A finished block is fed once more with
``update_past_key_values`` to enter the prefix cache, and that forward's last output gives the first
token of the next block. A request ends with the block in which it commits ``stop_token``: everything
after its first stop token becomes ``tokenizer.pad_token_id`` and it leaves the batch.

`lrd_batch_sample` keeps all of that — the forwards and their arguments, the sub-blocks, the block
cache, the commit rule through the model's own ``sample_with_top_p`` with v2's ``top_p`` and
``temperature``, the stop-token handling and the returned ``{request index: tokens}`` — and runs
`LRDSampler` over each sub-block: its Phase 1, its mixtures for the sub-block's open positions, and its
early stop. Mixtures reach the model through a forward hook on its input embedding module (v2's forward
receives ``input_ids``; its ``inputs_embeds`` path builds the attention mask from ``input_ids`` and
fails in eval), only for the sub-block's open positions and never in the forward that fills the prefix
cache, so no cached key or value comes from a mixture. With ``lrd_refinement``, ``lrd_mixing`` and
``lrd_early_stop`` off the output is upstream's token for token and forward for forward.

Differences from upstream on the LRD path, on purpose: the mask token is never committed or proposed
as a block's first token; a prompt of exactly ``block_size`` tokens (the shortest of the batch) is
cached before decoding (upstream skips that block and decodes without the prompt); a request whose
prompt ends exactly at a block boundary gets its next token from the forward that cached that block
(upstream leaves the position masked when a longer prompt shares the batch, and predicts it from the
wrong output); a request whose block starts with the stop token (the previous block's next token)
ends with that block too (upstream ends a request only when a sub-block step commits a stop token, and
decodes on past the stop otherwise); all requests finishing in the first block without a prefix cache do
not crash (upstream trims a cache that does not exist).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from ...config import LRDConfig
from ...mixture import log_probs
from ...sampler import BlockState, LRDSampler
from .settings import lrd_config as make_config
from .settings import switch

CLASS = "Fast_dLLM_QwenForCausalLM"
FUNCTION = "batch_sample"


@torch.no_grad()
def lrd_batch_sample(
    model: Any,
    input_ids: Tensor,
    tokenizer: Any,
    block_size: int,
    max_new_tokens: int,
    small_block_size: int,
    min_len: int,
    seq_len: Tensor,
    mask_id: int = 151665,
    threshold: float = 0.95,
    stop_token: int = 151645,
    use_block_cache: bool = False,
    top_p: float = 0.95,
    temperature: float = 0.0,
    *,
    config: LRDConfig,
) -> dict[int, Tensor]:
    """LRD over v2's block and sub-block loop; arguments and result as upstream's ``batch_sample``
    (`input_ids` right-padded with `mask_id`, `seq_len` [B] the prompt lengths, `min_len` the shortest).
    `config` holds LRD's fields; the commit rule and sampling are v2's arguments."""
    pad_id = _check_args(
        model, input_ids, tokenizer, block_size, max_new_tokens, small_block_size, min_len, seq_len, config
    )
    _check_numbers(mask_id, threshold, stop_token, top_p, temperature)
    config = config.replace(policy="threshold", threshold=float(threshold), temperature=float(temperature))
    sampler = LRDSampler(config, model.get_input_embeddings().weight, mask_id)
    select = _threshold_commits(model, threshold, top_p, temperature)

    x = input_ids.clone()
    seq_len = seq_len.clone()
    requests = torch.arange(x.shape[0], device=x.device)  # original index of each row still decoding
    first_block = min_len // block_size
    past = None
    if first_block > 0:  # the prompt's whole blocks go into the prefix cache
        output = model.forward(
            input_ids=x[:, : first_block * block_size],
            use_cache=True,
            update_past_key_values=True,
            block_size=block_size,
        )
        past = output.past_key_values
        if min_len % block_size == 0:
            ends_here = seq_len == min_len
            x = _widen(x, min_len + 1, mask_id)
            x[ends_here, min_len] = _argmax(output.logits[:, -1], mask_id)[ends_here]

    results: dict[int, Tensor] = {}
    x_t = x
    for block in range(first_block, max_new_tokens // block_size + int(seq_len.max()) // block_size):
        if x.shape[0] == 0:
            break
        begin, end = block * block_size, (block + 1) * block_size
        x_t = _widen(x, end, mask_id)[:, :end].clone()
        block_cache, ahead = None, None
        for sub in range(0, block_size, small_block_size):
            block_cache, ahead = _decode_sub_block(
                model, sampler, select, x_t, past, block_cache, ahead, begin, sub, small_block_size, use_block_cache
            )
        answer = torch.arange(begin, end, device=x.device)[None] >= seq_len[:, None]
        finished = ((x_t[:, begin:end] == stop_token) & answer).any(dim=-1)
        _pad_after_stop(x_t, finished, seq_len, end, stop_token, pad_id)
        if not bool(finished.all()):  # hard tokens into the prefix cache; the last output starts the next block
            output = model.forward(
                input_ids=x_t[:, begin:end],
                use_cache=True,
                past_key_values=past,
                update_past_key_values=True,
                block_size=block_size,
            )
            past = output.past_key_values
            token = _argmax(output.logits[:, -1], mask_id).masked_fill(finished, pad_id)
            x_t = torch.cat((x_t, token[:, None]), dim=1)
        x = _widen(x, end, mask_id)
        x[:, :end] = x_t[:, :end]
        if x_t.shape[1] > end:  # the next token, for the rows whose prompt ends by this block
            x = _widen(x, end + 1, mask_id)
            starts = seq_len <= end
            x[starts, end] = x_t[starts, end]
        if bool(finished.any()):
            for row in finished.nonzero().flatten().tolist():
                results[int(requests[row])] = x_t[row].clone()
            keep = ~finished
            requests, x, x_t, seq_len = requests[keep], x[keep], x_t[keep], seq_len[keep]
            if past is not None:
                _keep_rows(past, keep)
    for row, request in enumerate(requests.tolist()):  # max_new_tokens reached
        results[int(request)] = x_t[row].clone()
    return results


def _decode_sub_block(
    model: Any,
    sampler: LRDSampler,
    select: Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]],
    x_t: Tensor,
    past: Any,
    block_cache: Any,
    ahead: Tensor | None,
    begin: int,
    sub: int,
    width: int,
    use_block_cache: bool,
) -> tuple[Any, Tensor | None]:
    """Decode columns ``begin + sub ..`` of `x_t` (in place) with v2's forwards; returns the block cache
    and, when Phase 1 commits, the logits of the block's latest whole-block forward.

    A whole-block forward predicts the later sub-blocks too: when Phase 1 commits
    (``commits_in_refinement``) that prediction is the reference of the next sub-block's first KL, so
    positions that were already stable commit on that sub-block's first forward."""
    start = begin + sub
    state = sampler.init_block(x_t[:, start : start + width], width)
    keep_ahead = sampler.config.commits_in_refinement
    if keep_ahead and ahead is not None:  # normalised once, and only the sub-block's slice
        sampler.use_reference(state, log_probs(ahead[:, sub : sub + width], sampler.mask_id))
    limit = sampler.max_forwards_per_block(width)
    for _ in range(limit):
        if state.done:
            return block_cache, ahead
        cached = {"use_cache": True, "past_key_values": past, "update_past_key_values": False}
        if use_block_cache and block_cache is not None and not bool((x_t[:, start] == sampler.mask_id).any()):
            with _mixtures(model, sampler, state, 0):  # the sub-block over the block cache
                output = model.forward(
                    input_ids=x_t[:, start : start + width],
                    **cached,
                    use_block_cache=True,
                    block_past_key_values=block_cache,
                    replace_position=sub,
                )
            logits = _shift(output.logits)
        else:  # the whole block (refreshing the block cache when it is used)
            with _mixtures(model, sampler, state, sub):
                if use_block_cache:
                    output = model.forward(input_ids=x_t[:, begin:], **cached, use_block_cache=True)
                    block_cache = output.block_past_key_values
                else:
                    output = model.forward(input_ids=x_t[:, begin:], **cached)
            whole = _shift(output.logits)
            logits = whole[:, sub : sub + width]
            if keep_ahead:
                ahead = whole
        sampler.step(state, logits, select=select)
        x_t[:, start : start + width] = state.tokens
    if not state.done:
        raise RuntimeError(f"sub-block at {start} still open after {limit} forwards (LRD loop bound)")
    return block_cache, ahead


def _threshold_commits(
    model: Any, threshold: float, top_p: float, temperature: float
) -> Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]:
    """v2's commit rule as an `LRDSampler.step` ``select``: draw with the model's own
    ``sample_with_top_p``; commit every candidate whose probability exceeds `threshold`, and the most
    probable candidate of each row in any case."""

    def select(logits: Tensor, candidates: Tensor, tokens: Tensor, decode_step: Tensor) -> tuple[Tensor, Tensor]:
        proposals, probs = model.sample_with_top_p(logits, top_p=top_p, temperature=temperature)
        confidence = probs.gather(-1, proposals.unsqueeze(-1)).squeeze(-1)
        confidence = torch.where(candidates, confidence, -torch.inf)
        commit = confidence > threshold
        commit[torch.arange(commit.shape[0], device=commit.device), confidence.argmax(dim=-1)] = True
        return proposals, commit & candidates

    return select


@contextlib.contextmanager
def _mixtures(model: Any, sampler: LRDSampler, state: BlockState, column: int) -> Iterator[None]:
    """While inside, the input embedding module returns the sub-block's open positions (query
    columns ``column ..``) as their mixtures; nothing changes before the first mixture exists."""
    if state.mixture is None:
        yield
        return
    width = state.block_length

    def replace(module: Any, inputs: Any, output: Tensor) -> Tensor:
        out = output.clone()
        out[:, column : column + width] = sampler.block_inputs(state, output[:, column : column + width])
        return out

    handle = model.get_input_embeddings().register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _shift(logits: Tensor) -> Tensor:
    """Output ``i - 1`` predicts position ``i``; the query's first position keeps its own output (its
    token is always known when it is read: a prompt token or the previous block's next token)."""
    return torch.cat((logits[:, :1], logits[:, :-1]), dim=1)


def _argmax(logits: Tensor, mask_id: int) -> Tensor:
    """The most likely token other than the mask."""
    logits = logits.clone()
    logits[..., mask_id] = -torch.inf
    return logits.argmax(dim=-1)


def _widen(x: Tensor, width: int, mask_id: int) -> Tensor:
    """`x` with mask columns appended up to `width` (unchanged when already that wide)."""
    if x.shape[1] >= width:
        return x
    return torch.cat((x, x.new_full((x.shape[0], width - x.shape[1]), mask_id)), dim=1)


def _pad_after_stop(x_t: Tensor, finished: Tensor, seq_len: Tensor, end: int, stop_token: int, pad_id: int) -> None:
    """A finished request keeps its answer up to its first stop token; the rest becomes padding."""
    for row in finished.nonzero().flatten().tolist():
        prompt = int(seq_len[row])
        if prompt >= end:
            continue
        stops = (x_t[row, prompt:] == stop_token).nonzero()
        if len(stops):
            x_t[row, prompt + int(stops[0, 0]) + 1 :] = pad_id


def _keep_rows(cache: Any, keep: Tensor) -> None:
    """Drop finished rows from the prefix cache, whatever its kind: `V2Cache`, a transformers 4.x
    ``DynamicCache`` (``key_cache`` lists, as upstream edits it) or one with per-layer ``keys``."""
    if hasattr(cache, "keep_rows"):
        cache.keep_rows(keep)
    elif hasattr(cache, "layers") and all(hasattr(layer, "keys") for layer in cache.layers):
        for layer in cache.layers:
            layer.keys, layer.values = layer.keys[keep], layer.values[keep]
    else:
        for layer in range(len(cache)):
            cache.key_cache[layer] = cache.key_cache[layer][keep]
            cache.value_cache[layer] = cache.value_cache[layer][keep]


def _check_args(
    model: Any,
    input_ids: Tensor,
    tokenizer: Any,
    block_size: int,
    max_new_tokens: int,
    small_block_size: int,
    min_len: int,
    seq_len: Tensor,
    config: LRDConfig,
) -> int:
    """Each bad value is an error that names the argument; returns the pad token id."""
    if not isinstance(config, LRDConfig):
        raise TypeError(f"config must be an LRDConfig, got {type(config).__name__}")
    if config.early_stop and config.early_stop_scope == "sequence":
        raise ValueError(
            "lrd_early_stop_scope must be 'block' with Fast-dLLM v2 (got 'sequence'): its forwards predict "
            "only the current block, never the rest of the answer"
        )
    for name in ("forward", "sample_with_top_p", "get_input_embeddings"):
        if not callable(getattr(model, name, None)):
            raise TypeError(f"the model must have Fast-dLLM v2's {name}() (got {type(model).__name__})")
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise ValueError("input_ids must be a [batch, length] tensor of token ids (torch.long), right-padded")
    for name, value in (
        ("block_size", block_size),
        ("max_new_tokens", max_new_tokens),
        ("small_block_size", small_block_size),
        ("min_len", min_len),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if block_size % small_block_size:
        raise ValueError(f"small_block_size ({small_block_size}) must divide block_size ({block_size})")
    if max_new_tokens < block_size:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) must be at least block_size ({block_size})")
    batch, width = input_ids.shape
    if not isinstance(seq_len, Tensor) or seq_len.shape != (batch,) or seq_len.dtype != torch.long:
        raise ValueError(f"seq_len must be a [{batch}] torch.long tensor of prompt lengths")
    if int(seq_len.min()) != min_len or int(seq_len.max()) != width:
        raise ValueError(
            f"min_len must be the shortest prompt ({int(seq_len.min())}, got {min_len}) and input_ids as wide as the "
            f"longest ({int(seq_len.max())}, got {width}), as v2's eval.py builds them"
        )
    pad_id = getattr(tokenizer, "pad_token_id", None)
    if not isinstance(pad_id, int) or isinstance(pad_id, bool):
        raise ValueError(f"tokenizer.pad_token_id must be an int token id, got {pad_id!r}")
    return pad_id


def _check_numbers(mask_id: int, threshold: float, stop_token: int, top_p: float, temperature: float) -> None:
    for name, value in (("mask_id", mask_id), ("stop_token", stop_token)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a token id (an int >= 0), got {value!r}")
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    if not isinstance(top_p, int | float) or not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
    if not isinstance(temperature, int | float) or temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature!r}")


def v2_config(values: dict[str, Any], config: LRDConfig | dict[str, Any] | None = None) -> LRDConfig:
    """LRD's fields for v2 (``lrd_<field>`` values without the prefix): the early stop covers the
    sub-block unless a scope is named (``sequence`` is then refused)."""
    return make_config(values, config, whole_answer=False)


def sampler_switch(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for upstream's ``batch_sample``: with ``sampler`` absent, None or "default" it is
    called exactly as it was; ``sampler="lrd"`` runs `lrd_batch_sample` with the same arguments (and
    upstream's defaults). Works at run time (`install`) and as a decorator line in upstream's file."""

    def run_lrd(arguments: dict[str, Any], lrd_values: dict[str, Any], lrd_config: Any) -> Any:
        model = arguments.pop("self")
        return lrd_batch_sample(model, **arguments, config=v2_config(lrd_values, lrd_config))

    return switch(function, run_lrd)


def install(upstream: ModuleType) -> ModuleType:
    """Switch ``Fast_dLLM_QwenForCausalLM.batch_sample`` of v2's ``generation_functions`` module in place
    (idempotent); ``eval.py`` binds that function onto the model, so it gets the switched one when
    installed first."""
    cls = getattr(upstream, CLASS, None)
    if cls is None or FUNCTION not in vars(cls):
        raise ValueError(f"{getattr(upstream, '__file__', upstream)} has no {CLASS}.{FUNCTION}: not Fast-dLLM v2")
    setattr(cls, FUNCTION, sampler_switch(vars(cls)[FUNCTION]))
    return upstream
