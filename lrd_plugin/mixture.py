"""The numerical pieces of LRD: predictions, entropy, KL and mixture embeddings.

All probability maths runs in fp32 whatever the model dtype; the mask token is removed from every
prediction (it is an input symbol, never an answer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


def host_reads_are_free(t: Tensor) -> bool:
    """Whether reading a value of `t` back to Python costs nothing extra. On the CPU it does not, so
    a step may trim its work with what it reads; on an accelerator the read stalls the host until
    the device's queue drains, so the step keeps fixed shapes and reads nothing instead."""
    return t.device.type == "cpu"


def log_probs(logits: Tensor, mask_id: int) -> Tensor:
    """fp32 log-softmax over the vocabulary with the mask token's probability set to zero."""
    logits = logits.float().clone()
    logits[..., mask_id] = -torch.inf
    return torch.log_softmax(logits, dim=-1)


def entropy(logp: Tensor, probs: Tensor | None = None) -> Tensor:
    """Shannon entropy in nats over the last axis (0 log 0 = 0); `probs` is ``logp.exp()`` if the
    caller has it already."""
    return torch.special.entr(logp.exp() if probs is None else probs).sum(dim=-1)


CPU_CHUNK = 1 << 22  # elements (16 MiB of fp32) of the temporaries one piece of a CPU reduction may allocate


def kl_divergence(logp: Tensor, logq: Tensor) -> Tensor:
    """KL(p || q) per position over the last axis; terms where p = 0 contribute nothing.

    Floored at 0: fp32 rounding of two nearly equal predictions can give -1e-8, which would let
    tau = 0 ("never stop on KL") fire. A term with p = 0 is 0 * (-inf) or 0 * finite: NaN or 0,
    and `nansum` drops both; p > 0 where q = 0 stays +inf.

    On the CPU the positions go in pieces of at most `CPU_CHUNK` elements: a window's full-size
    temporaries (tens of MiB over a large vocabulary) are mapped and faulted in afresh by the
    allocator at every step, which costs more than the arithmetic; the values are the same.
    """
    if logp.device.type != "cpu" or logp.numel() <= CPU_CHUNK:
        return (logp.exp() * (logp - logq)).nansum(dim=-1).clamp_min(0.0)
    rows = max(1, CPU_CHUNK // logp.shape[-1])
    p, q = logp.reshape(-1, logp.shape[-1]), logq.reshape(-1, logq.shape[-1])
    pieces = [kl_divergence(p[i : i + rows], q[i : i + rows]) for i in range(0, p.shape[0], rows)]
    return torch.cat(pieces).reshape(logp.shape[:-1])


def mixing_weight(ent: Tensor, vocab_size: int, r_f: float, alpha_form: str) -> Tensor:
    """alpha per position: Eq. 4 (``one_minus_entropy``) or Appendix D (``entropy``); in [0, r_f]."""
    normalised = (ent / math.log(vocab_size)).clamp(0.0, 1.0)
    return r_f * (1.0 - normalised if alpha_form == "one_minus_entropy" else normalised)


def nucleus(probs: Tensor, top_p: float, cap: int) -> tuple[Tensor, Tensor]:
    """Top-p nucleus of each row, truncated to at most `cap` tokens.

    Returns (token ids [.., k], renormalised weights [.., k]); weights outside the nucleus are 0.
    The nucleus is the smallest most-probable prefix whose mass reaches `top_p`; it is exact
    whenever it has at most `cap` tokens.
    """
    values, ids = probs.topk(min(cap, probs.shape[-1]), dim=-1)
    mass_before = values.cumsum(dim=-1) - values
    weights = torch.where(mass_before < top_p, values, 0.0)
    return ids, weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)


@dataclass(frozen=True)
class MixtureRecipe:
    """Eq. 3 as weights over embedding rows: ``1 - alpha`` on the mask row plus ``alpha`` times the
    nucleus weights. Kept apart from any embedding table so that an engine whose table is split by
    vocabulary (tensor parallelism) can embed each shard's share and sum the shares."""

    ids: Tensor  # [..., k] nucleus token ids
    weights: Tensor  # [..., k] renormalised nucleus weights (0 outside the nucleus)
    alpha: Tensor  # [...] mixing weight

    def select(self, where: Tensor) -> MixtureRecipe:
        """The positions where the bool mask `where` (the recipe's leading shape) is set, flattened."""
        return MixtureRecipe(self.ids[where], self.weights[where], self.alpha[where])

    def place(self, where: Tensor) -> MixtureRecipe:
        """The inverse of `select`: this flat recipe at the True positions of `where`, and the bare
        mask (``alpha`` 0, no nucleus) everywhere else."""
        ids = self.ids.new_zeros((*where.shape, self.ids.shape[-1]))
        weights = self.weights.new_zeros((*where.shape, self.weights.shape[-1]))
        alpha = self.alpha.new_zeros(where.shape)
        ids[where], weights[where], alpha[where] = self.ids, self.weights, self.alpha
        return MixtureRecipe(ids, weights, alpha)

    @staticmethod
    def cat(recipes: list[MixtureRecipe]) -> MixtureRecipe:
        """Flat recipes one after the other."""
        return MixtureRecipe(*(torch.cat([getattr(r, f) for r in recipes]) for f in ("ids", "weights", "alpha")))

    def _used_columns(self) -> tuple[Tensor, Tensor]:
        """ids and weights without the trailing columns that are zero in every row: a confident
        model's nucleus holds a token or two of the `cap`, and the bag's cost is linear in its width.
        Exact, since a nucleus is a prefix of the descending top-k. Costs one host read, so only
        where reads are free (the CPU); elsewhere every column is embedded."""
        if self.weights.numel() == 0 or not host_reads_are_free(self.weights):
            return self.ids, self.weights
        used = max(1, int((self.weights > 0).sum(dim=-1).max()))
        return self.ids[..., :used], self.weights[..., :used]

    def embed(self, table: Tensor, mask_id: int, first_row: int | None = None) -> Tensor:
        """fp32 mixture over the whole embedding `table` (``first_row=None``), or the share of it
        carried by rows ``[first_row, first_row + len(table))`` when `table` is one shard of it.
        Shares of disjoint row ranges that cover the vocabulary sum to the whole mixture."""
        rows = table.shape[0]
        ids, weights = self._used_columns()
        alpha = self.alpha.float().unsqueeze(-1)
        weights = weights * alpha  # the nucleus carries alpha of the mixture, so one bag sums it
        if first_row is not None:  # a shard: only the ids it holds, at their local rows
            local = ids - first_row
            inside = (local >= 0) & (local < rows)
            weights = torch.where(inside, weights, 0.0)
            ids = local.clamp(0, rows - 1)
        k = ids.shape[-1]
        mixed = F.embedding_bag(
            ids.reshape(-1, k), table, per_sample_weights=weights.reshape(-1, k).to(table.dtype), mode="sum"
        ).float()
        first = first_row or 0
        if first <= mask_id < first + rows:  # and the mask row the rest, 1 - alpha
            row = mask_id - first
            mixed = torch.addmm(mixed, (1.0 - alpha).reshape(-1, 1), table[row : row + 1].float())
        return mixed.reshape(*self.alpha.shape, table.shape[1])


def mixture_recipe(
    logp: Tensor,
    *,
    top_p: float,
    r_f: float,
    alpha_form: str,
    cap: int,
    ent: Tensor | None = None,
    probs: Tensor | None = None,
) -> MixtureRecipe:
    """The Eq. 3-4 weights for predictions `logp` [..., V] (from `log_probs`); `ent` and `probs`
    (``logp.exp()``) when the caller has them already."""
    probs = logp.exp() if probs is None else probs
    ids, weights = nucleus(probs, top_p, cap)
    ent = entropy(logp, probs) if ent is None else ent
    return MixtureRecipe(ids, weights, mixing_weight(ent, logp.shape[-1], r_f, alpha_form))


def mixture_embeddings(
    logp: Tensor,
    embedding: Tensor,
    mask_id: int,
    *,
    top_p: float,
    r_f: float,
    alpha_form: str,
    cap: int,
    ent: Tensor | None = None,
) -> Tensor:
    """Eq. 3: (1 - alpha) * e_mask + alpha * E_{v ~ nucleus(p)}[e_v], in the embedding's dtype.

    `logp` is [..., V] (from `log_probs`), `embedding` the [V_emb, d] input table. The expected
    embedding is an `embedding_bag` over the capped nucleus, so the cost is O(N * k * d) and no
    dense [N, V] @ [V, d] product is formed.
    """
    recipe = mixture_recipe(logp, top_p=top_p, r_f=r_f, alpha_form=alpha_form, cap=cap, ent=ent)
    return recipe.embed(embedding, mask_id).to(embedding.dtype)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of `values` over the True positions of `mask` per row (0 for a row with none)."""
    total = torch.where(mask, values, 0.0).sum(dim=-1)
    return total / mask.sum(dim=-1).clamp_min(1)  # a row with none: 0 / 1
