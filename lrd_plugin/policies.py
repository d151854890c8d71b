"""Commit policies: which still-masked positions of a block receive their token at this step.

Each rule sees per-position scores of one block and a `candidates` mask (open positions of
sequences that commit at this step) and returns a boolean commit mask of the same shape. Rows
without candidates commit nothing. Every rule except a zero-size step of the fixed schedule
commits at least one position of a row that has candidates, which bounds the loop.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lowest_entropy(entropy: Tensor, candidates: Tensor) -> Tensor:
    """The LRD paper's baseline (Eq. 2): the single open position with the lowest entropy."""
    score = entropy.masked_fill(~candidates, torch.inf)
    return _one_hot(score.argmin(dim=-1), candidates)


def top_k_confidence(confidence: Tensor, candidates: Tensor, k: Tensor) -> Tensor:
    """LLaDA's low-confidence remasking: the `k[b]` most confident open positions of row b."""
    ranks = _confidence_ranks(confidence, candidates)
    return (ranks < k.unsqueeze(-1)) & candidates


def threshold(confidence: Tensor, candidates: Tensor, tau: float) -> Tensor:
    """Fast-dLLM's threshold rule: every open position with confidence >= tau, and at least the best."""
    score = confidence.masked_fill(~candidates, -torch.inf)
    best = _one_hot(score.argmax(dim=-1), candidates)
    return ((confidence >= tau) & candidates) | best


def factor(confidence: Tensor, candidates: Tensor, f: float) -> Tensor:
    """Fast-dLLM's factor rule: the n most confident positions such that the i-th of them has
    confidence >= 1 - f / (i + 1) (1-based i; the first always passes).

    Reproduces upstream's edge case: when the first failing rank is the last open position, or
    nothing fails, every open position is committed.
    """
    n_open = candidates.sum(dim=-1, keepdim=True)
    sorted_conf = confidence.masked_fill(~candidates, -torch.inf).sort(dim=-1, descending=True).values
    rank = torch.arange(confidence.shape[-1], device=confidence.device)
    bar = (1.0 - f / (rank + 2.0)).masked_fill(rank == 0, -1.0)
    fails = (sorted_conf < bar) & (rank < n_open)
    first_fail = torch.where(fails.any(dim=-1, keepdim=True), fails.int().argmax(dim=-1, keepdim=True), n_open)
    count = torch.where(first_fail >= n_open - 1, n_open, first_fail)
    return top_k_confidence(confidence, candidates, count.squeeze(-1))


def fixed_schedule(n_open: Tensor, steps: int) -> Tensor:
    """LLaDA's schedule: `n_open[b]` tokens spread evenly over `steps`, remainder to the first steps."""
    base = torch.div(n_open, steps, rounding_mode="floor").unsqueeze(-1)
    extra = torch.arange(steps, device=n_open.device) < (n_open - base.squeeze(-1) * steps).unsqueeze(-1)
    return base + extra.long()


def _confidence_ranks(confidence: Tensor, candidates: Tensor) -> Tensor:
    """Rank of each position by descending confidence among candidates (0 = most confident)."""
    order = confidence.masked_fill(~candidates, -torch.inf).argsort(dim=-1, descending=True, stable=True)
    return torch.empty_like(order).scatter_(
        -1, order, torch.arange(order.shape[-1], device=order.device).expand_as(order)
    )


def _one_hot(index: Tensor, candidates: Tensor) -> Tensor:
    hot = torch.zeros_like(candidates).scatter_(-1, index.unsqueeze(-1), True)
    return hot & candidates
