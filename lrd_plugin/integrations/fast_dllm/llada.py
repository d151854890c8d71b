"""LRD inside Fast-dLLM's LLaDA generation: ``generate*(..., sampler="lrd", lrd_<field>=...)``.

The block loop follows upstream's cache protocol exactly — a full ``model(x, use_cache=True)``
forward refreshes the cache at every block start and makes the block's first decision; the prefix
cache is cut at the block start and the query is the block plus the masked suffix; the dual cache
recomputes the block in place through ``replace_position`` — and commits go through upstream's own
``get_num_transfer_tokens``, ``get_transfer_index`` and ``get_transfer_index_dynamic``. LRD adds only
its phases, its mixture inputs (``inputs_embeds``; token ids whenever no mixture exists, so the base
path feeds the model exactly what upstream feeds it) and its KL early stop.

Differences from upstream on the LRD path, on purpose: the mask token is never proposed; the dual
cache loops until the block has no mask left (upstream's ``range(1, steps_per_block)`` loop can
leave masks, NVlabs/Fast-dLLM#66); padding is still attended, as upstream does. Under
``remasking="random"`` upstream ranks positions by random numbers, so LRD's rules that rely on the
engine committing confident positions on sight stand down (``later_gate`` ``auto`` resolves to
``early_stop``; the stop is never skipped as a repeat of the engine's rule).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from ...config import LRDConfig
from ...lookahead import Lookahead
from ...sampler import BlockState, LRDSampler
from .inputs import model_inputs
from .settings import lrd_config as make_config
from .settings import switch

CACHES = ("none", "prefix", "dual")
FUNCTIONS = {"generate": "none", "generate_with_prefix_cache": "prefix", "generate_with_dual_cache": "dual"}
REMASKING = ("low_confidence", "random")


@torch.no_grad()
def lrd_generate(
    upstream: ModuleType | SimpleNamespace,
    model: Any,
    prompt: Tensor,
    *,
    cache: str,
    config: LRDConfig,
    steps: int = 128,
    gen_length: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int = 126336,
    threshold: float | None = None,
    factor: float | None = None,
    legacy: bool = False,
) -> tuple[Tensor, int]:
    """LRD over one of upstream's three loops (`cache`); returns ``(x, nfe)`` like upstream.

    `upstream` is Fast-dLLM's ``generate`` module (its commit functions are used); `legacy` copies
    24cc59e's cached loops, which run one cached forward per block even when the refresh forward
    finished it (so that the base path matches that commit NFE for NFE)."""
    steps_per_block = _check_args(cache, config, prompt, steps, gen_length, block_length, remasking, threshold, factor)
    if factor is not None and not hasattr(upstream, "get_transfer_index_dynamic"):
        raise ValueError("factor decoding needs Fast-dLLM a9b81e4 or later (24cc59e has no get_transfer_index_dynamic)")
    policy = "threshold" if threshold is not None else "factor" if factor is not None else "low_confidence"
    config = config.replace(
        policy=policy,
        steps_per_block=steps_per_block if policy == "low_confidence" else None,
        temperature=float(temperature),
        **({"threshold": float(threshold)} if threshold is not None else {}),
        **({"factor": float(factor)} if factor is not None else {}),
    )
    embedding = model.get_input_embeddings().weight
    # random remasking ranks by random numbers, not by the model's confidence
    sampler = LRDSampler(config, embedding, mask_id, engine_ranks_by_confidence=remasking == "low_confidence")
    sequence_scope = config.early_stop and config.early_stop_scope == "sequence"
    # the dual cache predicts later blocks only at its refreshes: the sequence stop reads those
    lookahead = Lookahead(sampler, block_length) if cache == "dual" and sequence_scope else None
    window_to_end = sequence_scope and lookahead is None

    batch, prompt_length = prompt.shape
    device = getattr(model, "device", embedding.device)
    x = torch.full((batch, prompt_length + gen_length), mask_id, dtype=torch.long, device=device)
    x[:, :prompt_length] = prompt
    nfe = 0
    state: BlockState | None = None
    for start in range(prompt_length, prompt_length + gen_length, block_length):
        end = start + block_length
        window_end = x.shape[1] if window_to_end else end
        state = sampler.init_block(x[:, start:window_end], block_length, previous=state)
        if state.done:  # finished by a sequence-wide early stop in an earlier block
            continue
        quota = upstream.get_num_transfer_tokens(x[:, start:end] == mask_id, steps_per_block)
        select = _select(upstream, temperature, remasking, threshold, factor, quota)
        past_key_values, replace_position = None, None
        forwards = 0
        while not state.done or (legacy and cache != "none" and forwards < 2):
            if cache == "none":
                logits = model(**model_inputs(sampler, state, x, start, model)).logits[:, start:window_end]
            elif forwards == 0:  # refresh: hard tokens over the whole sequence
                output = model(x, use_cache=True)
                logits = output.logits[:, start:window_end]
                past_key_values = output.past_key_values
                if cache == "prefix":
                    past_key_values = [tuple(t[:, :, :start] for t in layer) for layer in past_key_values]
                else:
                    replace_position = torch.zeros_like(x, dtype=torch.bool)
                    replace_position[:, start:end] = True
                if lookahead is not None:  # the refresh is the latest prediction of the block too
                    sampler.use_reference(state, lookahead.reference(start, end))
                    if end < x.shape[1]:
                        x[:, end:] = lookahead.step(x[:, end:], output.logits[:, end:], end)[1]
            elif cache == "prefix":
                query = model_inputs(sampler, state, x[:, start:], 0, model)
                logits = model(**query, past_key_values=past_key_values, use_cache=True).logits
                logits = logits[:, : window_end - start]
            else:
                query = model_inputs(sampler, state, x[:, start:end], 0, model)
                logits = model(
                    **query, past_key_values=past_key_values, use_cache=True, replace_position=replace_position
                ).logits
            forwards += 1
            nfe += 1
            if legacy and state.done:  # 24cc59e's extra cached forward: its result commits nothing
                continue
            sampler.step(state, logits, select=select)
            x[:, start:window_end] = state.tokens
    return x, nfe


def _select(
    upstream: ModuleType,
    temperature: float,
    remasking: str,
    threshold: float | None,
    factor: float | None,
    quota: Tensor,
) -> Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Phase-2 commits through upstream's own functions, with upstream's arguments."""

    def select(logits: Tensor, candidates: Tensor, tokens: Tensor, decode_step: Tensor) -> tuple[Tensor, Tensor]:
        if factor is not None:
            return upstream.get_transfer_index_dynamic(logits, temperature, remasking, candidates, tokens, None, factor)
        if threshold is not None:
            return upstream.get_transfer_index(logits, temperature, remasking, candidates, tokens, None, threshold)
        steps = quota.shape[1]
        k = quota.gather(1, decode_step.clamp(max=steps - 1).unsqueeze(1)).squeeze(1)
        k = torch.where(decode_step < steps, k, candidates.sum(dim=1))  # past the schedule: all that is left
        return upstream.get_transfer_index(logits, temperature, remasking, candidates, tokens, k, None)

    return select


def _check_args(
    cache: str,
    config: LRDConfig,
    prompt: Tensor,
    steps: int,
    gen_length: int,
    block_length: int,
    remasking: str,
    threshold: float | None,
    factor: float | None,
) -> int:
    """Upstream asserts; here each bad value is an error that names the argument."""
    if cache not in CACHES:
        raise ValueError(f"cache must be one of {list(CACHES)}, got {cache!r}")
    if not isinstance(config, LRDConfig):
        raise TypeError(f"config must be an LRDConfig, got {type(config).__name__}")
    if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.dtype != torch.long:
        raise ValueError("prompt must be a [batch, length] tensor of token ids (torch.long)")
    for name, value in (("steps", steps), ("gen_length", gen_length), ("block_length", block_length)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if gen_length % block_length:
        raise ValueError(f"gen_length ({gen_length}) must be a multiple of block_length ({block_length})")
    blocks = gen_length // block_length
    if steps % blocks:
        raise ValueError(f"steps ({steps}) must be a multiple of the number of blocks ({blocks})")
    if remasking not in REMASKING:
        raise ValueError(f"remasking must be one of {list(REMASKING)}, got {remasking!r}")
    if threshold is not None and factor is not None:
        raise ValueError("give threshold or factor, not both")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if factor is not None and not factor > 0:
        raise ValueError(f"factor must be > 0, got {factor}")
    return steps // blocks


def sampler_switch(cache: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for one of upstream's ``generate*`` functions (`cache` names its loop): with
    ``sampler`` absent, None or "default" the function is called exactly as it was;
    ``sampler="lrd"`` runs LRD over the same loop. The upstream module is looked up when called, so
    this also works as a decorator line inside upstream's own file (``patches/``)."""
    if cache not in CACHES:
        raise ValueError(f"cache must be one of {list(CACHES)}, got {cache!r}")
    return lambda function: _switch(function, cache)


def _switch(function: Callable[..., Any], cache: str) -> Callable[..., Any]:
    legacy = "factor" not in inspect.signature(function).parameters  # 24cc59e's loops predate factor decoding

    def run_lrd(arguments: dict[str, Any], lrd_values: dict[str, Any], lrd_config: Any) -> Any:
        # upstream's module namespace, read at call time (the module need not be in sys.modules)
        upstream = SimpleNamespace(**inspect.unwrap(function).__globals__)
        config = make_config(lrd_values, lrd_config)
        return lrd_generate(upstream, cache=cache, config=config, legacy=legacy, **arguments)

    return switch(function, run_lrd)


def install(upstream: ModuleType) -> ModuleType:
    """Switch the three ``generate*`` functions of Fast-dLLM's ``generate`` module in place
    (idempotent). Names imported from it *before* this call keep the originals."""
    for name, cache in FUNCTIONS.items():
        setattr(upstream, name, sampler_switch(cache)(getattr(upstream, name)))
    return upstream
