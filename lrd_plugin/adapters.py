"""The small protocol through which the decode loop reaches a model, and its HF-style adapter.

A denoiser embeds tokens, runs a forward from input embeddings (optionally against a prefix KV
cache) and says whether its logits are shifted by one (Dream: the output at i predicts i + 1).
Fast-dLLM's models, SGLang's model runner and plain transformers models all fit behind it.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from .sampler import check_mask_id


@runtime_checkable
class Denoiser(Protocol):
    """What the LRD decode loop needs from a masked diffusion LM."""

    mask_id: int
    shift: int  # 0: logits at i predict token i (LLaDA, BERT); 1: they predict token i + 1 (Dream)
    supports_cache: bool
    # None: full attention. An int: block-diffusion attention over blocks of that size; the loop's
    # blocks must then be the model's (read with getattr, so denoisers without it are full-attention).
    block_size: int | None

    def embedding_table(self) -> Tensor:
        """The [vocab, dim] input embedding matrix (mixtures are built from its rows)."""
        ...

    def forward(
        self,
        inputs_embeds: Tensor,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        """Logits [B, L_new, V] for the given embeddings, and the KV cache if `use_cache`."""
        ...

    def truncate_cache(self, cache: Any, length: int) -> Any:
        """The cache restricted to its first `length` positions (a prefix cache)."""
        ...


class HFDenoiser:
    """Adapter for any HF-style module called as ``model(inputs_embeds=..., ...)`` returning ``.logits``.

    Covers LLaDA-style models (logits at the position), Dream-style models (``shift=1``) and
    bidirectional ``*ForMaskedLM`` checkpoints (BERT, RoBERTa, ...). A prefix KV cache is used when
    the model returns ``past_key_values`` as per-layer (K, V) tuples (sliced along
    ``cache_seq_dim``) or as a transformers ``Cache`` with ``crop``. Position ids count real tokens
    from 0; models that number positions from an offset (RoBERTa: ``padding_idx + 1``) set
    ``position_offset``. ``block_size`` runs a block-diffusion model (one whose forward takes
    ``block_size``, as this project's LLaDA does) in its block-causal attention mode; the decode loop
    then aligns its blocks to the model's.
    """

    def __init__(
        self,
        model: nn.Module,
        mask_id: int,
        *,
        shift: int = 0,
        cache_seq_dim: int = 2,
        position_offset: int = 0,
        block_size: int | None = None,
    ) -> None:
        if shift not in (0, 1):
            raise ValueError(f"shift must be 0 (logits at the position) or 1 (logits shifted by one), got {shift!r}")
        if block_size is not None and (
            isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
        ):
            raise ValueError(f"block_size must be a positive int or None (full attention), got {block_size!r}")
        self.model = model
        self.mask_id = mask_id
        self.shift = shift
        self.cache_seq_dim = cache_seq_dim
        self.position_offset = position_offset
        accepted = _forward_parameters(model)
        if "inputs_embeds" not in accepted and "**" not in accepted:
            raise TypeError(
                f"{type(model).__name__}.forward does not accept inputs_embeds; LRD feeds mixture embeddings "
                "and needs a model whose forward takes inputs_embeds"
            )
        self._accepted = accepted
        if block_size is not None and "block_size" not in accepted:
            raise TypeError(f"{type(model).__name__}.forward takes no block_size: it has no block-diffusion mode")
        self.block_size = block_size
        self.supports_cache = "past_key_values" in accepted
        check_mask_id(mask_id, self.embedding_table().shape[0])

    def embedding_table(self) -> Tensor:
        getter = getattr(self.model, "get_input_embeddings", None)
        module = getter() if callable(getter) else None
        if not isinstance(module, nn.Embedding):
            raise TypeError(f"{type(self.model).__name__}.get_input_embeddings() must return an nn.Embedding")
        return module.weight

    def forward(
        self,
        inputs_embeds: Tensor,
        *,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, Any]:
        if attention_mask is not None and not self._takes("attention_mask") and not bool(attention_mask.all()):
            raise ValueError(
                f"{type(self.model).__name__}.forward takes no attention_mask, so left padding would be attended; "
                "pass prompts of equal length (attention_mask=None) to this model"
            )
        kwargs: dict[str, Any] = {"inputs_embeds": inputs_embeds}
        optional = {
            "attention_mask": attention_mask,
            "position_ids": None if position_ids is None else position_ids + self.position_offset,
            "past_key_values": past_key_values,
        }
        for name, value in optional.items():
            if value is not None and self._takes(name):
                kwargs[name] = value
        if "use_cache" in self._accepted or use_cache:
            kwargs["use_cache"] = use_cache
        if self.block_size is not None:
            kwargs["block_size"] = self.block_size
        out = self.model(**kwargs)
        logits = out.logits if hasattr(out, "logits") else out[0]
        return logits, getattr(out, "past_key_values", None) if use_cache else None

    def truncate_cache(self, cache: Any, length: int) -> Any:
        if cache is None:
            raise ValueError(f"{type(self.model).__name__} returned no past_key_values; use cache='none'")
        if hasattr(cache, "crop"):
            cache.crop(length)
            return cache
        dim = self.cache_seq_dim
        return tuple(tuple(t.narrow(dim, 0, length) for t in layer) for layer in cache)

    def _takes(self, name: str) -> bool:
        return name in self._accepted or "**" in self._accepted


def _forward_parameters(model: nn.Module) -> set[str]:
    params = inspect.signature(model.forward).parameters.values()
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        names.add("**")
    return names
