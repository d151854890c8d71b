"""The sequence-scope stop for loops whose per-step forwards see only the current block.

Fast-dLLM's dual cache recomputes the block alone between refreshes, so `LRDSampler.step` never
sees the later positions there. But every block starts with a full forward (the cache refresh),
and that forward predicts the whole answer. `Lookahead` compares successive full forwards
position by position and commits what the early stop commits there: under the gated rules the later
positions that have settled between them and pass the gate for later positions (`rules.later_gate`),
under ``paper`` every open one once their mean KL is below tau_decode. A settled EOS tail then ends
decoding in the dual cache as it does with the prefix cache, where the window already covers the
answer.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import mixture, rules
from .sampler import LRDSampler


class Lookahead:
    """Stability between full forwards for the positions after the current block."""

    def __init__(self, sampler: LRDSampler, block_length: int) -> None:
        self.sampler = sampler
        self.gate = rules.later_gate(sampler.config, block_length)  # every position it sees is later
        self.prev_logp: Tensor | None = None  # [B, T, V] of the last full forward
        self.prev_start = 0  # absolute position of prev_logp[:, 0]

    @property
    def enabled(self) -> bool:
        cfg = self.sampler.config
        return cfg.early_stop and cfg.early_stop_scope == "sequence"

    def reference(self, start: int, end: int) -> Tensor | None:
        """The last full forward's prediction of positions [start, end) (None if it did not cover
        them): the first KL reference of the block there (`LRDSampler.use_reference`)."""
        if self.prev_logp is None or start < self.prev_start:
            return None
        reference = self.prev_logp[:, start - self.prev_start : end - self.prev_start]
        return reference if reference.shape[1] == end - start else None

    def step(
        self, tokens: Tensor, logits: Tensor, start: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """`tokens` [B, T] and `logits` [B, T, V] (prediction *for* each position) of the positions
        from absolute index `start` to the end of the answer, from a full forward. Returns the
        ``(commit [B, T], predictions [B, T])`` of the stop; call it at every full forward, with
        `start` moving forward only."""
        if not self.enabled:
            return torch.zeros_like(tokens, dtype=torch.bool), tokens
        cfg, mask_id = self.sampler.config, self.sampler.mask_id
        logp = mixture.log_probs(logits, mask_id)
        open_now = tokens == mask_id
        commit = torch.zeros_like(open_now)
        x0 = tokens
        if self.prev_logp is not None and start >= self.prev_start:
            prev = self.prev_logp[:, start - self.prev_start :]
            kl = mixture.kl_divergence(logp, prev)
            x0 = self.sampler.predict(logp, generator)
            confidence = logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1).exp()
            everywhere = torch.ones(tokens.shape[0], dtype=torch.bool, device=tokens.device)
            no_block = torch.zeros(tokens.shape[1], dtype=torch.bool, device=tokens.device)
            kl_window = mixture.masked_mean(kl, open_now)  # 0 where nothing is open: nothing to commit
            fires = rules.early_stop_fires(
                cfg.early_stop_rule, "sequence", everywhere, kl_window, kl_window, no_block, cfg.tau_decode
            )
            commit = rules.early_stop_commits(
                cfg.early_stop_rule, fires, open_now, kl, confidence, cfg.tau_decode, self.gate
            )
        self.prev_logp, self.prev_start = logp, start
        return commit, torch.where(commit, x0, tokens)
