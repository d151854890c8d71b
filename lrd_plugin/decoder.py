"""Reference decode loop: LRD over semi-autoregressive blocks, without a cache or with a prefix cache.

The loop only moves tensors between a `Denoiser` and the `LRDSampler`; every decision is the
sampler's. With refinement, mixing and early stop off it is exactly the base sampler (LLaDA's
`generate` / Fast-dLLM's `generate_with_prefix_cache` semantics, with the mask token never
predicted).
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .adapters import Denoiser
from .config import LRDConfig
from .sampler import BlockState, LRDSampler

CACHE_MODES = ("none", "prefix")


@dataclass
class GenerationOutput:
    """Tokens and the statistics that tell what LRD did."""

    sequences: Tensor  # [B, prompt + gen_length], prompt included
    prompt_length: int
    nfe: int  # forwards of the batch
    nfe_per_sequence: Tensor  # [B] forwards in which the sequence still had work
    refine_steps: Tensor  # [B, blocks] Phase-1 forwards per block
    decode_steps: Tensor  # [B, blocks] Phase-2 forwards per block
    early_stopped: Tensor  # [B, blocks] the block was finished by the KL early stop
    stopped_sequence: Tensor  # [B] a sequence-wide early stop finished the answer
    wall_time: float
    kl_trace: list[list[Tensor]] | None = field(default=None, repr=False)  # per block, per step [B]

    @property
    def generated(self) -> Tensor:
        return self.sequences[:, self.prompt_length :]

    def to_dict(self, with_tokens: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "nfe": self.nfe,
            "nfe_per_sequence": self.nfe_per_sequence.tolist(),
            "refine_steps": self.refine_steps.tolist(),
            "decode_steps": self.decode_steps.tolist(),
            "early_stopped_blocks": self.early_stopped.tolist(),
            "stopped_sequence": self.stopped_sequence.tolist(),
            "wall_time_s": self.wall_time,
        }
        if with_tokens:
            out["generated"] = self.generated.tolist()
        if self.kl_trace is not None:
            out["kl_trace"] = [
                [[_finite_or_none(v) for v in step.tolist()] for step in block] for block in self.kl_trace
            ]
        return out


@torch.no_grad()
def generate(
    model: Denoiser,
    prompt: Tensor,
    *,
    gen_length: int,
    block_length: int,
    config: LRDConfig | None = None,
    attention_mask: Tensor | None = None,
    cache: str = "none",
    generator: torch.Generator | None = None,
    record_kl: bool = False,
    progress: bool = False,
    canvas: Tensor | None = None,
) -> GenerationOutput:
    """Decode `gen_length` tokens after `prompt` [B, Lp] with LRD.

    `canvas` [B, gen_length] turns generation into infilling: its mask-id positions are decoded,
    every other token is given and kept (None: all masked, plain generation).

    `attention_mask` [B, Lp] marks real prompt tokens (1) against left padding (0); position ids
    then count real tokens only, so a padded row decodes as it would alone. `cache` is ``none`` or
    ``prefix`` (KV of the prompt and finished blocks is computed once per block; only hard tokens
    ever enter it). NFE is bounded by ``gen_length / block_length * max_forwards_per_block``.

    A denoiser in block-diffusion mode (``block_size`` set) needs ``block_length == block_size``;
    position ids are then shifted so every row's answer starts at a block boundary of the model's
    attention (RoPE sees only relative positions, so the shift changes nothing else).
    """
    config = LRDConfig() if config is None else config
    _check_arguments(model, prompt, gen_length, block_length, attention_mask, cache)
    gen_length, block_length = int(gen_length), int(block_length)
    batch, prompt_length = prompt.shape
    device = prompt.device
    table = model.embedding_table()
    sampler = LRDSampler(config, table, model.mask_id, track_kl=record_kl)
    if canvas is None:
        canvas = prompt.new_full((batch, gen_length), model.mask_id)
    _check_canvas(canvas, batch, gen_length, table.shape[0])
    x = torch.cat([prompt, canvas.to(prompt.device)], dim=1)
    keys, positions = _padding(attention_mask, batch, gen_length, device)
    if getattr(model, "block_size", None) is not None:
        positions = _block_aligned(positions, keys, prompt_length + gen_length, prompt_length, block_length, device)

    blocks = gen_length // block_length
    nfe = 0
    nfe_seq = torch.zeros(batch, dtype=torch.long, device=device)
    refine = torch.zeros(batch, blocks, dtype=torch.long, device=device)
    decode = torch.zeros_like(refine)
    stopped = torch.zeros(batch, blocks, dtype=torch.bool, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    traces: list[list[Tensor]] = []
    shift = model.shift
    start_time = time.perf_counter()
    state: BlockState | None = None
    for b in _progress(range(blocks), progress):
        start = prompt_length + b * block_length
        end = start + block_length
        stop = end if config.early_stop_scope == "block" else x.shape[1]
        state = sampler.init_block(x[:, start:stop], block_length, active=~finished, previous=state)
        prefix = None
        while not state.done:
            first = start - shift if prefix is not None else 0
            inputs = F.embedding(x[:, first:], table)
            inputs[:, start - first : end - first] = sampler.block_inputs(state, inputs[:, start - first : end - first])
            logits, new_cache = model.forward(
                inputs,
                attention_mask=keys,
                position_ids=None if positions is None else positions[:, first:],
                past_key_values=prefix,
                use_cache=cache == "prefix",
            )
            if cache == "prefix":
                prefix = model.truncate_cache(prefix if prefix is not None else new_cache, start - shift)
            lo = start - shift - first
            sampler.step(state, logits[:, lo : lo + stop - start], generator)
            x[:, start:stop] = state.tokens
            nfe += 1
        nfe_seq += state.forwards
        refine[:, b], decode[:, b], stopped[:, b] = state.refine_steps, state.decode_steps, state.early_stopped
        finished |= state.finished_sequence
        traces.append(state.kl_trace)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return GenerationOutput(
        sequences=x,
        prompt_length=prompt_length,
        nfe=nfe,
        nfe_per_sequence=nfe_seq,
        refine_steps=refine,
        decode_steps=decode,
        early_stopped=stopped,
        stopped_sequence=finished,
        wall_time=time.perf_counter() - start_time,
        kl_trace=traces if record_kl else None,
    )


def _check_canvas(canvas: Tensor, batch: int, gen_length: int, vocab: int) -> None:
    if not isinstance(canvas, Tensor) or canvas.dtype != torch.long or tuple(canvas.shape) != (batch, gen_length):
        got = f"{canvas.dtype} {tuple(canvas.shape)}" if isinstance(canvas, Tensor) else type(canvas).__name__
        raise ValueError(f"canvas must be a [batch, gen_length] = [{batch}, {gen_length}] LongTensor, got {got}")
    if bool(((canvas < 0) | (canvas >= vocab)).any()):
        raise ValueError(f"canvas token ids must be in [0, {vocab - 1}] (mask id = to decode)")


def _check_arguments(
    model: Denoiser, prompt: Tensor, gen_length: int, block_length: int, attention_mask: Tensor | None, cache: str
) -> None:
    if not isinstance(prompt, Tensor):
        raise TypeError(f"prompt must be a [batch, length] LongTensor of token ids, got {type(prompt).__name__}")
    if prompt.dim() != 2 or prompt.dtype != torch.long:
        raise ValueError(
            f"prompt must be a [batch, length] LongTensor of token ids, got {prompt.dtype} {tuple(prompt.shape)}"
        )
    if prompt.shape[1] < model.shift:
        raise ValueError("prompt must hold at least one token for a model with shifted logits (shift=1)")
    if not _is_int(gen_length) or gen_length < 1:
        raise ValueError(f"gen_length must be a positive integer, got {gen_length!r}")
    if not _is_int(block_length) or not 1 <= block_length <= gen_length:
        raise ValueError(f"block_length must be an integer in [1, gen_length={gen_length}], got {block_length!r}")
    if gen_length % block_length:
        raise ValueError(
            f"gen_length ({gen_length}) must be a multiple of block_length ({block_length}); "
            f"e.g. gen_length={(gen_length // block_length + 1) * block_length}"
        )
    block_size = getattr(model, "block_size", None)
    if block_size is not None and block_length != block_size:
        raise ValueError(
            f"block_length must equal the block-diffusion model's block_size ({block_size}), got {block_length}"
        )
    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {list(CACHE_MODES)}, got {cache!r}")
    if cache == "prefix" and not model.supports_cache:
        raise ValueError(f"cache='prefix' needs a model that takes past_key_values; {type(model).__name__} does not")
    if attention_mask is not None and not isinstance(attention_mask, Tensor):
        raise TypeError(f"attention_mask must be a [batch, length] tensor of 0/1, got {type(attention_mask).__name__}")
    if attention_mask is not None and attention_mask.shape != prompt.shape:
        raise ValueError(
            f"attention_mask must have the prompt's shape {tuple(prompt.shape)}, got {tuple(attention_mask.shape)}"
        )
    vocab = model.embedding_table().shape[0]
    if bool((prompt < 0).any() or (prompt >= vocab).any()):
        raise ValueError(f"prompt token ids must be in [0, {vocab - 1}] (the embedding table)")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _padding(
    mask: Tensor | None, batch: int, gen_length: int, device: torch.device
) -> tuple[Tensor | None, Tensor | None]:
    """Key mask over prompt + answer and position ids that skip left padding (None without padding)."""
    if mask is None:
        return None, None
    keys = torch.cat(
        [mask.to(device=device, dtype=torch.long), torch.ones(batch, gen_length, dtype=torch.long, device=device)], 1
    )
    return keys, (keys.cumsum(dim=1) - 1).clamp_min(0)


def _block_aligned(
    positions: Tensor | None, keys: Tensor | None, length: int, prompt_length: int, block: int, device: torch.device
) -> Tensor:
    """Position ids shifted per row so that the row's first answer token sits at a multiple of ``block``."""
    if positions is None:
        return torch.arange(length, device=device)[None] + (-prompt_length) % block
    real_prompt = keys[:, :prompt_length].sum(dim=1, keepdim=True)
    return positions + (-real_prompt) % block


def _progress(blocks: range, enabled: bool) -> Any:
    if not enabled:
        return blocks
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return blocks
    return tqdm(blocks, desc="blocks", unit="block", leave=False)


def _finite_or_none(value: float) -> float | None:
    return value if value == value and value not in (float("inf"), float("-inf")) else None
