"""LRD's commit and stop rules, each a small function of one step's per-position statistics.

`LRDSampler.step` computes the statistics (confidence, per-position KL between successive
predictions, which positions are open) and asks these rules which positions to commit:

* Phase 1 (refinement): the commit policy or the engine's own rule (``refine_commit="engine"``, and
  ``"auto"`` under a parallel rule); `sure_commits` only, the positions the engine's threshold would
  commit at once (``"sure"``); or nothing at all (``"none"``, the paper);
* Phase 2: the commit policy or the engine's own rule, plus `stable_commits` (settled positions above
  a gate set relative to the engine's threshold), plus the early stop (`early_stop_commits`), whose
  gate after the current block is `later_gate`.

Every commit rule returns a boolean [B, W] mask that is a subset of its `candidates`; the rest
answer per sequence ([B]) or give a gate (a float).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import LRDConfig

ROUNDING = 1e-6  # fp32 probabilities near 1 differ by ~1e-7 between two ways of computing them


def sure_commits(confidence: Tensor, candidates: Tensor, threshold: float) -> Tensor:
    """Phase 1's commits with ``refine_commit="sure"``: every candidate whose confidence reaches the
    engine's threshold, *without* the threshold rule's forced best position. A position the engine
    would commit on this forward need not wait a forward for a KL; the uncertain rest refine."""
    return candidates & (confidence >= threshold)


def relative_gate(threshold: float, slack: float) -> float:
    """The confidence a *stable* position needs: its error 1 - p may be `slack` times the error
    1 - threshold the engine accepts from any position. Tied to the engine's threshold, not to one
    model's confidence scale: a user who lowers the threshold for a less confident model lowers the
    gate with it."""
    return min(1.0, max(0.0, 1.0 - slack * (1.0 - threshold)))


def stable_commits(kl: Tensor, confidence: Tensor, candidates: Tensor, tau: float, gate: float | Tensor) -> Tensor:
    """Phase 2's stability-gated commits: candidates whose prediction has settled (own KL between
    the last two forwards < `tau`) and whose confidence is at least `gate` (a float, or one per
    window position)."""
    return candidates & (kl < tau) & (confidence >= gate)


def early_stop_fires(
    rule: str, scope: str, decoding: Tensor, kl_block: Tensor, kl_window: Tensor, in_block: Tensor, tau: float
) -> Tensor:
    """[B, W] positions the early stop covers at this step.

    ``paper`` and ``kl_gated`` fire for the block when its mean KL is < `tau` and, with ``sequence``
    scope, for the whole window when the window's mean KL is; ``per_position`` covers the block (and
    with ``sequence`` scope the window) at every Phase-2 step."""
    if rule == "per_position":
        return decoding.unsqueeze(-1) & (in_block | (scope == "sequence"))
    fire = (decoding & (kl_block < tau)).unsqueeze(-1) & in_block
    if scope == "sequence":
        fire = fire | (decoding & (kl_window < tau)).unsqueeze(-1)
    return fire


def early_stop_commits(
    rule: str, fires: Tensor, left_open: Tensor, kl: Tensor, confidence: Tensor, tau: float, gate: float | Tensor
) -> Tensor:
    """What the early stop commits where it fires: ``paper`` every open position (Sec. 3.2); the
    gated rules only positions that are themselves stable (own KL < `tau`) and confident (>= `gate`),
    so an unstable or unconfident position is never finalised by the stop."""
    extra = left_open & fires
    if rule == "paper":
        return extra
    return stable_commits(kl, confidence, extra, tau, gate)


def block_finishes(left_open_block: Tensor) -> Tensor:
    """[B] rows whose block has no open position left after this step's commits: where later
    commits wait for the block's end (``later_commit`` resolved to ``block_end``) only these may
    commit positions after the block, so a committed later tail never changes the context of a
    block still being decoded."""
    return ~left_open_block.any(dim=-1)


def sequence_finished(rule: str, decoding: Tensor, kl_window: Tensor, tau: float, left_open: Tensor) -> Tensor:
    """[B] sequences whose whole window the sequence-scope stop has just finished: the rest of the
    answer where the window reaches its end (the decoder's sequence scope); where the window is the
    block (a loop that predicts only the block) it says no more than that the block is done."""
    fired = decoding if rule == "per_position" else decoding & (kl_window < tau)
    return fired & ~left_open.any(dim=-1)


def engine_bar(config: LRDConfig, block_length: int) -> float | None:
    """The lowest confidence at which the engine's parallel rule commits a position of a block of
    `block_length` whatever the rest of the block holds (None without a parallel rule). Under
    ``threshold`` that is the threshold. Under ``factor`` f, the i-th most confident of N open
    positions commits at confidence >= 1 - f / (i + 1) (the first always), so every position at or
    above 1 - f / (N + 1) commits, with all more confident ones; N <= block_length makes
    1 - f / (block_length + 1) the bar for any N."""
    if config.policy == "threshold":
        return config.threshold
    if config.policy == "factor":
        return 1.0 - config.factor / (block_length + 1)
    return None


def later_gate(config: LRDConfig, block_length: int) -> float:
    """The sequence-scope stop's confidence gate for positions *after* the current block.

    ``later_gate="auto"`` under a parallel rule: the lower of ``early_stop_confidence`` and the
    engine's bar (`engine_bar`). A later position that is settled (own KL < tau_decode) at a
    confidence the engine commits on sight would be committed by its block's first forward anyway;
    committing it now spares that block the forwards it would spend on stragglers. Tied to the
    threshold the user picked, so it moves with a model's confidence scale. Otherwise, and with
    ``later_gate="early_stop"``, the gate is ``early_stop_confidence``, as inside the block."""
    bar = engine_bar(config, block_length) if config.later_gate == "auto" else None
    return config.early_stop_confidence if bar is None else min(config.early_stop_confidence, bar)


def stop_within_engine(config: LRDConfig, block_length: int) -> bool:
    """Whether, inside a block of `block_length`, the early stop can only commit what the engine's
    rule commits on the same forward anyway: greedy decoding, a gated stop (``per_position`` or
    ``kl_gated``: it commits only positions that pass its gate), no `stable_commits`, and the gate at
    or above the engine's bar (`engine_bar`). Where the window is
    the block (Fast-dLLM's dual cache, SGLang), the block's KL then drives no decision, and a step
    can skip it."""
    bar = engine_bar(config, block_length)
    if bar is None:
        return False
    gated = config.early_stop_rule in ("per_position", "kl_gated")
    rule_only = config.temperature == 0 and gated and config.stable_slack == 0
    # room for the engine's own rounding of the same probability
    return rule_only and config.early_stop_confidence >= bar + ROUNDING


def positions_in_block(width: int, block_length: int, device: torch.device) -> Tensor:
    """[W] True for the window positions that belong to the current block."""
    return torch.arange(width, device=device) < block_length
