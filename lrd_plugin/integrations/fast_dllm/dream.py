"""LRD inside Fast-dLLM's Dream block sampler: ``diffusion_generate(..., sampler="lrd", lrd_<field>=...)``.

Fast-dLLM drives Dream through two methods of ``DreamGenerationMixin`` in
``dream/model/generation_utils_block.py``: ``diffusion_generate`` prepares the generation config and
calls ``self._sample``, which holds the block loop. ``generate_switch`` and ``sample_switch`` wrap
them (at run time through `install`, or as decorator lines inside upstream's file, see ``patches/``):
without ``sampler`` they call upstream's own function; with ``sampler="lrd"`` the generate wrapper
hands the LRD settings to ``_sample`` through a context variable (upstream's ``diffusion_generate``
passes ``_sample`` a fixed argument list) and ``_sample`` runs `lrd_sample`.

`lrd_sample` follows upstream's per-block protocol: one full ``use_cache=True`` forward refreshes the
cache at every block start and commits the block's first token (Dream predicts token i from output
i-1, and a cached query that starts at the block cannot see output i-1, so upstream decides that token
here, NVlabs/Fast-dLLM#61); then cached forwards over the block and the masked suffix (prefix cache,
cut at the block start) or over the block alone (dual cache, written in place through
``replace_position``). That first token is committed at the refresh on the LRD path too, even while
Phase 1 commits nothing else: no later cached forward predicts it. Commits go through upstream's
``sample_tokens`` with upstream's rules: ``alg="confidence_threshold"`` commits every token whose
confidence reaches ``threshold`` (at least one); any other ``alg`` commits the lowest-entropy tokens
on the ``linspace(1, eps)`` schedule. With ``use_cache=False`` the same decisions run on full forwards
(no cache approximation at all). LRD adds its phases, its mixture inputs (``inputs_embeds``; token ids
whenever no mixture exists, so the base path feeds the model what upstream feeds it) and its KL early
stop. With those three off, the output is upstream's token for token and forward for forward at
temperature 0 (with temperature > 0 both draw from the same distributions, not from the same random
numbers).

Differences from upstream on the LRD path, on purpose: the mask token is never committed; batch > 1
works with the dual cache (upstream's [B, L] ``replace_position`` breaks the in-place cache write,
NVlabs/Fast-dLLM#57; a [1, L] one selects the same columns for every row) and with the threshold rule
(upstream decides for row 0 only); padded prompts work with both caches (upstream slices the 4-D
attention mask along the key axis and fails); a block always ends without masks (upstream leaves
them when a block has a single step); ``output_history`` records the sequence after every forward
(upstream's block sampler returns an empty list).
"""

from __future__ import annotations

import contextvars
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
from .settings import check_sampler, split_lrd_kwargs, with_active
from .settings import lrd_config as make_config

CACHES = ("none", "prefix", "dual")
THRESHOLD_ALG = "confidence_threshold"
_SAMPLE_PARAMETERS = ("input_ids", "attention_mask", "generation_config", "threshold", "block_length", "dual_cache")


class _Request:
    """LRD settings on their way from ``diffusion_generate`` to the ``_sample`` of the same model."""

    __slots__ = ("config", "consumed", "model", "use_cache", "values")

    def __init__(self, model: Any, values: dict[str, Any], config: Any, use_cache: bool) -> None:
        make_config(values, config)  # refuse bad settings before upstream starts
        self.model = model
        self.values, self.config = values, config  # the config is made once the cache is known
        self.use_cache = use_cache
        self.consumed = False


_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("lrd_dream_request", default=None)


# --- the LRD block loop ------------------------------------------------------------------------------
@torch.no_grad()
def lrd_sample(
    upstream: ModuleType | SimpleNamespace,
    model: Any,
    input_ids: Tensor,
    attention_mask: Tensor | None,
    generation_config: Any,
    threshold: float | None = 0.9,
    block_length: int | None = 32,
    dual_cache: bool = False,
    *,
    config: LRDConfig,
    use_cache: bool = True,
) -> Any:
    """LRD over upstream's Dream block loop; returns what upstream's ``_sample`` returns (the ids, or
    ``DreamModelOutput`` when ``return_dict_in_generate``).

    `upstream` is the ``generation_utils_block`` namespace (its ``sample_tokens`` and
    ``DreamModelOutput`` are used). The cache is ``"dual"`` if `dual_cache`, else ``"prefix"``, or
    ``"none"`` when `use_cache` is False."""
    if not isinstance(config, LRDConfig):
        raise TypeError(f"config must be an LRDConfig, got {type(config).__name__}")
    cache = "none" if not use_cache else "dual" if dual_cache else "prefix"
    gen = generation_config
    mask_id = _mask_id(gen)
    block_length, steps_per_block = _check_args(cache, config, input_ids, gen, threshold, block_length)
    by_threshold = gen.alg == THRESHOLD_ALG
    config = config.replace(
        policy="threshold" if by_threshold else "low_confidence",
        steps_per_block=None if by_threshold else steps_per_block,
        temperature=float(gen.temperature),
        **({"threshold": float(threshold)} if by_threshold else {}),
    )
    sampler = LRDSampler(config, model.get_input_embeddings().weight, mask_id)
    sequence_scope = config.early_stop and config.early_stop_scope == "sequence"
    # the dual cache predicts later blocks only at its refreshes: the sequence stop reads those
    lookahead = Lookahead(sampler, block_length) if cache == "dual" and sequence_scope else None
    window_to_end = sequence_scope and lookahead is None
    min_forwards = 2 if config.is_base_policy else 1

    prompt_length, total = input_ids.shape[1], gen.max_length
    x = torch.cat([input_ids, input_ids.new_full((input_ids.shape[0], total - prompt_length), mask_id)], dim=1)
    attention, positions = _attention(attention_mask, total)
    timesteps = torch.linspace(1, gen.eps, steps_per_block + 1, device=x.device)
    history: list[Tensor] | None = [] if (gen.return_dict_in_generate and gen.output_history) else None
    sample_tokens = upstream.sample_tokens
    sampling = {"temperature": gen.temperature, "top_p": gen.top_p, "top_k": gen.top_k}

    state: BlockState | None = None
    for start in range(prompt_length, total, block_length):
        end = start + block_length
        window_end = total if window_to_end else end
        state = sampler.init_block(x[:, start:window_end], block_length, previous=state)
        if state.done:  # finished by a sequence-wide early stop in an earlier block
            continue
        width = block_length if cache == "dual" else total - start  # upstream's query
        select = _Commits(sample_tokens, sampling, gen, threshold, timesteps, block_length, width)
        limit = sampler.max_forwards_per_block(block_length) + min_forwards
        past_key_values: list[tuple[Tensor, ...]] | None = None
        replace_position: Tensor | None = None
        forwards = 0
        while not state.done or forwards < min_forwards:
            if forwards == limit:
                raise RuntimeError(f"block at {start} still open after {limit} forwards (LRD loop bound)")
            if forwards == 0:  # refresh: hard tokens over the whole sequence
                output = model(input_ids=x, attention_mask=attention, position_ids=positions, use_cache=cache != "none")
                logits = output.logits[:, start - 1 : window_end - 1]  # output i-1 predicts token i
                if cache == "prefix":
                    past_key_values = [tuple(t[:, :start] for t in layer) for layer in output.past_key_values]
                elif cache == "dual":
                    past_key_values = output.past_key_values
                    replace_position = torch.zeros((1, total), dtype=torch.bool, device=x.device)
                    replace_position[:, start:end] = True
                if lookahead is not None:  # the refresh is the latest prediction of the block too
                    sampler.use_reference(state, lookahead.reference(start, end))
                    if end < total:
                        x[:, end:] = lookahead.step(x[:, end:], output.logits[:, end - 1 : total - 1], end)[1]
                _commit_block_start(state, logits[:, 0], sample_tokens, sampling, mask_id)
            elif cache == "none":
                query = model_inputs(sampler, state, x, start, model)
                output = model(**query, attention_mask=attention, position_ids=positions, use_cache=False)
                logits = output.logits[:, start - 1 : window_end - 1]
            elif cache == "prefix":
                query = model_inputs(sampler, state, x[:, start:], 0, model)
                output = model(
                    **query,
                    attention_mask=_rows(attention, start, total),
                    position_ids=None if positions is None else positions[:, start:],
                    past_key_values=past_key_values,
                    use_cache=True,
                )
                logits = _shifted(output.logits, window_end - start)
            else:
                query = model_inputs(sampler, state, x[:, start:end], 0, model)
                output = model(
                    **query,
                    attention_mask=_rows(attention, start, end),
                    position_ids=None if positions is None else positions[:, start:end],
                    past_key_values=past_key_values,
                    use_cache=True,
                    dual_cache=True,
                    replace_position=replace_position,
                )
                logits = _shifted(output.logits, block_length)
            forwards += 1
            if not state.done:  # upstream makes one cached forward even when the refresh finished the block
                select.refresh = forwards == 1
                sampler.step(state, logits, select=select)
                if forwards == 1:  # rows that decoded at the refresh spent step 0 of the schedule there
                    select.offset = (state.decode_steps == 0).long()
                x[:, start:window_end] = state.tokens
            if history is not None:
                history.append(x.clone())

    if gen.return_dict_in_generate:
        return upstream.DreamModelOutput(sequences=x, history=history)
    return x


class _Commits:
    """Phase-2 commits by upstream's rules, as an `LRDSampler.step` ``select``.

    Upstream numbers a block's steps from 0 at the refresh forward, which commits only the block's
    first token (done by `_commit_block_start`, so ``select`` commits nothing there); `offset` maps a
    row's Phase-2 step to that numbering when refinement kept the refresh out of Phase 2. Upstream
    ranks confidences stored in the logits' dtype (bf16 for Dream) with ``torch.topk`` over its
    query's width (-inf past the block); ranking the same way breaks equal scores the same way."""

    def __init__(
        self,
        sample_tokens: Callable[..., tuple[Tensor, Tensor]],
        sampling: dict[str, Any],
        generation_config: Any,
        threshold: float | None,
        timesteps: Tensor,
        block_length: int,
        width: int,
    ) -> None:
        self.sample_tokens = sample_tokens
        self.sampling = sampling
        self.by_threshold = generation_config.alg == THRESHOLD_ALG
        self.alg_temp = generation_config.alg_temp
        self.threshold = threshold
        self.timesteps = timesteps
        self.steps = timesteps.numel() - 1
        self.block_length = block_length
        self.width = width
        self.refresh = True
        self.offset: Tensor | int = 0

    def __call__(
        self, logits: Tensor, candidates: Tensor, tokens: Tensor, decode_step: Tensor
    ) -> tuple[Tensor, Tensor]:
        if self.refresh:
            return tokens, torch.zeros_like(candidates)
        confidence, x0 = self.sample_tokens(logits[candidates], **self.sampling, neg_entropy=not self.by_threshold)
        proposals = tokens.clone()
        proposals[candidates] = x0
        score = torch.full((candidates.shape[0], self.width), -torch.inf, dtype=logits.dtype, device=logits.device)
        score[:, : self.block_length][candidates] = confidence.to(logits.dtype)
        n_open = candidates.sum(dim=1)
        if self.by_threshold:  # every confidence >= threshold, and always the most confident one
            best = self._top(score, torch.ones_like(n_open), k=int(n_open.max()))
            return proposals, candidates & ((score[:, : self.block_length] >= self.threshold) | best)
        return proposals, candidates & self._scheduled(score, n_open, decode_step + self.offset)

    def _scheduled(self, score: Tensor, n_open: Tensor, step: Tensor) -> Tensor:
        """Step i of ``steps`` commits int(n * (1 - t_{i+1} / t_i)) of the n open tokens, the last
        step (and any later one) all of them; ranked by negative entropy, or drawn with ``alg_temp``."""
        last = step >= self.steps - 1
        i = step.clamp(max=max(self.steps - 2, 0))
        t, s = self.timesteps[i], self.timesteps[i + 1]
        count = torch.where(last, n_open, (n_open.to(t.dtype) * (1 - s / t)).long())
        if self.alg_temp is None or self.alg_temp == 0:
            return self._top(score, count)
        chosen = torch.zeros_like(score, dtype=torch.bool)
        weights = torch.softmax(score / self.alg_temp, dim=-1)
        for row in range(score.shape[0]):
            if int(count[row]) > 0:
                chosen[row, torch.multinomial(weights[row], num_samples=int(count[row]))] = True
        return chosen[:, : self.block_length]

    def _top(self, score: Tensor, count: Tensor, k: int | None = None) -> Tensor:
        """The `count[b]` best positions of row b, from one ``torch.topk`` of `k` (default: the largest
        count) per row, as upstream asks for (its threshold rule asks for every open position)."""
        k = int(count.max()) if k is None else k
        chosen = torch.zeros_like(score, dtype=torch.bool)
        if k > 0:
            index = score.topk(k, dim=1).indices
            chosen.scatter_(1, index, torch.arange(k, device=score.device).expand_as(index) < count.unsqueeze(1))
        return chosen[:, : self.block_length]


def _commit_block_start(
    state: BlockState,
    logits: Tensor,
    sample_tokens: Callable[..., tuple[Tensor, Tensor]],
    sampling: dict[str, Any],
    mask_id: int,
) -> None:
    """Upstream's refresh commits the block's first token unconditionally (#61): later cached queries
    start at that token and so never see the output that predicts it."""
    open_first = state.tokens[:, 0] == mask_id
    if bool(open_first.any()):
        logits = logits.clone()
        logits[..., mask_id] = -torch.inf
        _, x0 = sample_tokens(logits, **sampling)
        state.tokens[:, 0] = torch.where(open_first, x0, state.tokens[:, 0])


def _shifted(logits: Tensor, width: int) -> Tensor:
    """Predictions for the first `width` positions of a cached query: output i-1 predicts token i,
    and the query's first position gets its own output, as upstream's shift gives it (that token is
    always committed at the refresh, so this prediction is never used for a decision)."""
    return torch.cat([logits[:, :1], logits[:, : width - 1]], dim=1)


def _attention(attention_mask: Tensor | None, total: int) -> tuple[Tensor | str, Tensor | None]:
    """Upstream's attention inputs: ``"full"`` unless the prompt has padding, else a [B, 1, L, L]
    boolean mask (a padding position neither attends nor is attended) and its position ids."""
    if attention_mask is None or not bool((attention_mask == 0).any()):
        return "full", None
    keep = attention_mask.bool()
    keep = torch.cat([keep, keep.new_ones((keep.shape[0], total - keep.shape[1]))], dim=1)
    positions = (keep.long().cumsum(-1) - 1).masked_fill(~keep, 1)
    return keep[:, None, None, :] & keep[:, None, :, None], positions


def _rows(attention: Tensor | str, start: int, end: int) -> Tensor | str:
    """The mask rows of the query positions [start, end) over every key (upstream slices the key
    axis instead, which fails as soon as the prompt has padding)."""
    return attention if isinstance(attention, str) else attention[:, :, start:end, :]


def _mask_id(generation_config: Any) -> int:
    mask_id = generation_config.mask_token_id
    if isinstance(mask_id, Tensor) and mask_id.numel() == 1:
        mask_id = int(mask_id.item())
    if not isinstance(mask_id, int) or isinstance(mask_id, bool):
        raise ValueError(f"generation_config.mask_token_id must be the model's mask token id, got {mask_id!r}")
    return mask_id


def _check_args(
    cache: str,
    config: LRDConfig,
    input_ids: Tensor,
    gen: Any,
    threshold: float | None,
    block_length: int | None,
) -> tuple[int, int]:
    """Upstream asserts (or fails later); here each bad value is an error that names the argument.
    Returns (block_length, steps_per_block)."""
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise ValueError("input_ids must be a [batch, length] tensor of token ids (torch.long)")
    if input_ids.shape[1] < 1:
        raise ValueError("input_ids must hold at least one prompt token (Dream predicts token i from output i-1)")
    gen_length = gen.max_length - input_ids.shape[1]
    if gen_length < 1:
        raise ValueError(f"max_length ({gen.max_length}) leaves no room after the prompt ({input_ids.shape[1]} tokens)")
    block_length = gen_length if block_length is None else block_length
    for name, value in (("block_length", block_length), ("steps", gen.steps)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if gen_length % block_length:
        raise ValueError(f"max_new_tokens ({gen_length}) must be a multiple of block_length ({block_length})")
    blocks = gen_length // block_length
    if gen.steps % blocks:
        raise ValueError(f"steps ({gen.steps}) must be a multiple of the number of blocks ({blocks})")
    if not isinstance(gen.temperature, int | float) or isinstance(gen.temperature, bool) or gen.temperature < 0:
        raise ValueError(f"temperature must be a number >= 0, got {gen.temperature!r}")
    if gen.alg == THRESHOLD_ALG and (
        not isinstance(threshold, int | float) or isinstance(threshold, bool) or not 0.0 <= threshold <= 1.0
    ):
        raise ValueError(f"threshold must be in [0, 1] with alg='{THRESHOLD_ALG}', got {threshold!r}")
    if gen.alg_temp is not None and not gen.alg_temp >= 0:
        raise ValueError(f"alg_temp must be None or >= 0, got {gen.alg_temp!r}")
    return block_length, gen.steps // blocks


# --- the switches --------------------------------------------------------------------------------------
def generate_switch(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for ``DreamGenerationMixin.diffusion_generate``: with ``sampler`` absent, None or
    "default" upstream's function is called exactly as it was; ``sampler="lrd"`` (plus ``lrd_<field>``
    settings, ``lrd_config`` and, LRD only, ``use_cache=False`` for full forwards) runs upstream's
    preparation and sends the settings to the switched ``_sample`` of the same model. Settings put in
    force by an evaluation harness (`settings.active`) apply unless an argument overrides them."""
    if getattr(function, "__lrd_switch__", False):
        return function

    def switched(self: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs = with_active(kwargs)  # an evaluation harness's settings, under explicit arguments
        sampler, lrd_config = kwargs.pop("sampler", None), kwargs.pop("lrd_config", None)
        lrd_values, kwargs = split_lrd_kwargs(kwargs)
        if not check_sampler(sampler):
            _refuse_stray_settings(lrd_values, lrd_config)
            return function(self, *args, **kwargs)
        use_cache = _use_cache(kwargs.pop("use_cache", True))
        request = _Request(self, lrd_values, lrd_config, use_cache)
        if not getattr(_function_of(getattr(self, "_sample", None)), "__lrd_switch__", False):
            raise RuntimeError(
                "sampler='lrd' needs the switched DreamGenerationMixin._sample, but this model's _sample is "
                "upstream's own: call lrd_plugin.integrations.fast_dllm.dream.install(generation_utils_block) "
                "(or enable_dream) before binding model._sample (eval.py binds it with types.MethodType)"
            )
        token = _REQUEST.set(request)
        try:
            result = function(self, *args, **kwargs)
        finally:
            _REQUEST.reset(token)
        if not request.consumed:
            raise RuntimeError("sampler='lrd' was given, but diffusion_generate never reached the switched _sample")
        return result

    return _mark(switched, function)


def sample_switch(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for ``DreamGenerationMixin._sample``: runs `lrd_sample` when the switched
    ``diffusion_generate`` of the same model asked for LRD, or when called with ``sampler="lrd"``
    itself; otherwise calls upstream's function exactly as it was. Upstream's module is read when
    called, so this also works as a decorator line inside upstream's own file."""
    if getattr(function, "__lrd_switch__", False):
        return function
    signature = inspect.signature(function)
    names = list(signature.parameters)
    if tuple(names[1 : len(_SAMPLE_PARAMETERS) + 1]) != _SAMPLE_PARAMETERS:
        raise ValueError(
            f"sample_switch expects Fast-dLLM's block sampler _sample(self, {', '.join(_SAMPLE_PARAMETERS)}) "
            f"from dream/model/generation_utils_block.py, got {function.__qualname__}({', '.join(names)})"
        )

    def switched(self: Any, *args: Any, sampler: str | None = None, lrd_config: Any = None, **kwargs: Any) -> Any:
        lrd_values, kwargs = split_lrd_kwargs(kwargs)
        request = _REQUEST.get()
        if sampler is None and request is not None and request.model is self and not request.consumed:
            _refuse_stray_settings(lrd_values, lrd_config)
            request.consumed = True
            lrd_values, lrd_config, use_cache = request.values, request.config, request.use_cache
        elif check_sampler(sampler):
            use_cache = _use_cache(kwargs.pop("use_cache", True))
        else:
            _refuse_stray_settings(lrd_values, lrd_config)
            return function(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(names[0])
        config = make_config(lrd_values, lrd_config)
        # upstream's module namespace, read at call time (the module need not be in sys.modules)
        upstream = SimpleNamespace(**inspect.unwrap(function).__globals__)
        return lrd_sample(upstream, self, config=config, use_cache=use_cache, **arguments)

    return _mark(switched, function)


def install(upstream: ModuleType) -> ModuleType:
    """Switch ``diffusion_generate`` and ``_sample`` of the module's ``DreamGenerationMixin`` in place
    (idempotent). Methods bound before this call (``types.MethodType``) keep the originals."""
    mixin = getattr(upstream, "DreamGenerationMixin", None)
    if mixin is None or "_sample" not in vars(mixin) or "diffusion_generate" not in vars(mixin):
        raise ValueError(f"{getattr(upstream, '__name__', upstream)!r} has no DreamGenerationMixin to switch")
    mixin._sample = sample_switch(vars(mixin)["_sample"])
    mixin.diffusion_generate = generate_switch(vars(mixin)["diffusion_generate"])
    return upstream


def switched_pairs(upstream: ModuleType) -> tuple[tuple[Callable[..., Any], ...], tuple[Callable[..., Any], ...]]:
    """`install`, then upstream's own ``(diffusion_generate, _sample)`` and the switched pair, for a
    caller that binds one or the other to a model (``types.MethodType``, as Fast-dLLM's ``eval.py``)."""
    install(upstream)
    switched = tuple(vars(upstream.DreamGenerationMixin)[name] for name in ("diffusion_generate", "_sample"))
    return tuple(function.__wrapped__ for function in switched), switched


def _mark(switched: Callable[..., Any], function: Callable[..., Any]) -> Callable[..., Any]:
    switched.__wrapped__ = function  # type: ignore[attr-defined]
    switched.__lrd_switch__ = True  # type: ignore[attr-defined]
    switched.__name__ = function.__name__
    switched.__qualname__ = function.__qualname__
    switched.__doc__ = function.__doc__
    switched.__module__ = function.__module__
    return switched


def _function_of(method: Any) -> Any:
    return getattr(method, "__func__", method)


def _refuse_stray_settings(lrd_values: dict[str, Any], lrd_config: Any) -> None:
    if lrd_values or lrd_config is not None:
        given = sorted(f"lrd_{name}" for name in lrd_values) + (["lrd_config"] if lrd_config is not None else [])
        raise ValueError(f"LRD settings {given} were given without sampler='lrd'")


def _use_cache(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"use_cache must be True or False, got {value!r}")
    return value
