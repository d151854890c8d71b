"""The numerical pieces of LRD: predictions, entropy, KL and mixture embeddings.

All probability maths runs in fp32 whatever the model dtype; the mask token is removed from every
prediction (it is an input symbol, never an answer).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def log_probs(logits: Tensor, mask_id: int) -> Tensor:
    """fp32 log-softmax over the vocabulary with the mask token's probability set to zero."""
    logits = logits.float().clone()
    logits[..., mask_id] = -torch.inf
    return torch.log_softmax(logits, dim=-1)


def entropy(logp: Tensor) -> Tensor:
    """Shannon entropy in nats over the last axis (0 log 0 = 0)."""
    return torch.special.entr(logp.exp()).sum(dim=-1)


def kl_divergence(logp: Tensor, logq: Tensor) -> Tensor:
    """KL(p || q) per position over the last axis; terms where p = 0 contribute nothing.

    Floored at 0: fp32 rounding of two nearly equal predictions can give -1e-8, which would let
    tau = 0 ("never stop on KL") fire.
    """
    p = logp.exp()
    return torch.where(p > 0, p * (logp - logq), torch.zeros((), device=p.device)).sum(dim=-1).clamp_min(0.0)


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
    weights = torch.where(mass_before < top_p, values, torch.zeros((), device=values.device))
    return ids, weights / weights.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(weights.dtype).tiny)


def mixture_embeddings(
    logp: Tensor,
    embedding: Tensor,
    mask_embedding: Tensor,
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
    lead = logp.shape[:-1]
    ids, weights = nucleus(logp.exp(), top_p, cap)
    expected = F.embedding_bag(
        ids.reshape(-1, ids.shape[-1]),
        embedding,
        per_sample_weights=weights.reshape(-1, ids.shape[-1]).to(embedding.dtype),
        mode="sum",
    ).float()
    ent = entropy(logp) if ent is None else ent
    alpha = mixing_weight(ent, logp.shape[-1], r_f, alpha_form).reshape(-1, 1)
    mixed = (1.0 - alpha) * mask_embedding.float() + alpha * expected
    return mixed.reshape(*lead, -1).to(embedding.dtype)
