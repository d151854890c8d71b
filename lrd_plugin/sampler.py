"""The LRD state machine for one semi-autoregressive block: a config in, a `step` out.

Engine-agnostic: the caller runs the model and hands `step` the logits of a *window* that starts at
the block (the block, or the block plus every later generation position for the sequence-wide
early stop). Each sequence of a batch keeps its own phase:

    REFINE  Phase 1: feed mixture embeddings and commit nothing (the paper) or only what the
            engine's threshold is sure of (``refine_commit="sure"``), until the block's mean KL
            between successive predictions is < tau_refine or max_refine_steps forwards have
            refined. The forward that ends Phase 1 already commits (it sees the same inputs a
            fresh Phase-2 forward would), so no forward is wasted.
    DECODE  Phase 2: commit per the policy, keep mixtures on the rest; the early stop commits
            settled positions of the block (or window) to their predictions.
    DONE    the block has no open position left.

With ``refine_commit="engine"`` (the default under a parallel rule) Phase 1 would commit exactly what
Phase 2 commits, so a block starts in Phase 2: the engine's rule from the first forward, mixtures on
the open rest, the early stop.

Which positions each rule commits is in `rules` (one small function per rule); `step` only
computes the statistics they read and applies their masks.

Bound: a block takes at most `max_forwards_per_block(block_length)` forwards, because Phase 1 is
capped and every Phase-2 forward commits at least one token (the fixed schedule may spend
`steps_per_block` forwards). A committed token is never re-masked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import torch
from torch import Tensor

from . import mixture, policies, rules
from .config import LRDConfig

Select = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
"""An engine's own commit rule, used in Phase 2 instead of the config's policy:
``select(block_logits [B, n, V], candidates [B, n], block_tokens [B, n], decode_step [B])`` returns
``(proposals [B, n], commit [B, n])``. The mask token's logit is -inf in ``block_logits``, so an engine
function that knows nothing of LRD can never propose it; ``decode_step`` counts each sequence's
Phase-2 steps in this block (for a fixed per-step quota)."""


BAD_LOGITS = (
    "the model returned NaN or +inf logits (or a row that is -inf throughout); check its weights and dtype "
    "(e.g. fp16 overflow): "
    "no prediction can be decoded from them"
)


class Phase(IntEnum):
    REFINE = 0
    DECODE = 1
    DONE = 2


@dataclass
class BlockState:
    """Per-sequence state of the current block; window position j < block_length is in the block."""

    tokens: Tensor  # [B, W] long, mask_id where still open
    block_length: int
    phase: Tensor  # [B] long, a Phase per sequence
    prev_logp: Tensor | None = None  # [B, W', V] fp32 prediction of the previous forward
    mixture: Tensor | None = None  # [B, block_length, d] inputs for open block positions
    recipe: mixture.MixtureRecipe | None = None  # the same mixtures as weights over embedding rows
    schedule: Tensor | None = None  # [B, S] tokens per Phase-2 step (fixed schedule only)
    refine_steps: Tensor = field(default=None)  # type: ignore[assignment]
    decode_steps: Tensor = field(default=None)  # type: ignore[assignment]
    forwards: Tensor = field(default=None)  # type: ignore[assignment]
    early_stopped: Tensor = field(default=None)  # type: ignore[assignment]
    finished_sequence: Tensor = field(default=None)  # type: ignore[assignment]
    kl_trace: list[Tensor] = field(default_factory=list)  # per step [B] block KL, NaN if idle (track_kl only)

    def __post_init__(self) -> None:
        batch, device = self.tokens.shape[0], self.tokens.device
        for name in ("refine_steps", "decode_steps", "forwards"):
            if getattr(self, name) is None:
                setattr(self, name, torch.zeros(batch, dtype=torch.long, device=device))
        for name in ("early_stopped", "finished_sequence"):
            if getattr(self, name) is None:
                setattr(self, name, torch.zeros(batch, dtype=torch.bool, device=device))

    @property
    def active(self) -> Tensor:
        return self.phase != Phase.DONE

    @staticmethod
    def regroup(parts: list[tuple[BlockState, Tensor]]) -> BlockState:
        """One batch of the rows ``(state, row indices)`` of each part, in that order: an engine
        whose requests reach their blocks at different forwards (SGLang's FDFO loop) still takes one
        `step` per forward for them all. A row keeps its tokens, phase, counters and KL reference (a
        row that has none gets -inf log-probs there: an infinite KL, as with no reference). Mixtures
        are not carried: the next `step` forms them for every row, before any forward reads them."""
        if not parts:
            raise ValueError("regroup needs at least one (state, rows) part")
        lengths = {state.block_length for state, _ in parts}
        if len(lengths) != 1:
            raise ValueError(f"regrouped states must share one block_length, got {sorted(lengths)}")
        first = parts[0][0]

        def rows(name: str) -> Tensor:
            return torch.cat([getattr(state, name)[index] for state, index in parts])

        previous = [state.prev_logp for state, _ in parts]
        prev_logp = None
        if any(p is not None for p in previous):
            like = next(p for p in previous if p is not None)
            prev_logp = torch.cat(
                [
                    p[index] if p is not None else like.new_full((len(index), *like.shape[1:]), -torch.inf)
                    for p, (_, index) in zip(previous, parts, strict=True)
                ]
            )
        return BlockState(
            tokens=rows("tokens"),
            block_length=first.block_length,
            phase=rows("phase"),
            prev_logp=prev_logp,
            schedule=None if first.schedule is None else rows("schedule"),
            refine_steps=rows("refine_steps"),
            decode_steps=rows("decode_steps"),
            forwards=rows("forwards"),
            early_stopped=rows("early_stopped"),
            finished_sequence=rows("finished_sequence"),
        )

    @property
    def done(self) -> bool:
        return not bool(self.active.any())


class LRDSampler:
    """Runs LRD's per-block decision logic over logits supplied by any engine."""

    def __init__(
        self,
        config: LRDConfig,
        embedding: Tensor | None,
        mask_id: int,
        *,
        track_kl: bool = False,
        engine_ranks_by_confidence: bool = True,
    ) -> None:
        """`embedding` is the [vocab, dim] input table; None leaves embedding to the engine, which then
        reads each step's `state.recipe` (e.g. to embed a vocabulary-sharded table shard by shard).
        `track_kl` measures the KL even when no decision needs it and records it in
        `BlockState.kl_trace` (a KL trace of a base run); without it the trace stays empty.
        `engine_ranks_by_confidence` says that an engine's `select` commits by the model's confidence
        (the rule the config's policy names); False (e.g. Fast-dLLM's ``remasking="random"``, which
        ranks by random numbers) stands down the rules that count on it: the early stop is never
        skipped as a repeat of the engine's rule (`rules.stop_within_engine`), and ``later_gate``
        ``auto`` resolves to ``early_stop`` (`rules.later_gate`)."""
        if not isinstance(config, LRDConfig):
            raise TypeError(f"config must be an LRDConfig (e.g. LRDConfig.from_dict(...)), got {type(config).__name__}")
        if embedding is not None and (not isinstance(embedding, Tensor) or embedding.dim() != 2):
            shape = tuple(embedding.shape) if isinstance(embedding, Tensor) else type(embedding).__name__
            raise ValueError(f"embedding must be the [vocab, dim] input embedding table or None, got {shape}")
        check_mask_id(mask_id, None if embedding is None else embedding.shape[0])
        if not engine_ranks_by_confidence and config.later_gate == "auto":
            config = config.replace(later_gate="early_stop")  # the engine's bar is not a confidence
        self.config = config
        self.embedding = embedding
        self.mask_id = mask_id
        self.track_kl = track_kl
        self.engine_ranks_by_confidence = engine_ranks_by_confidence
        # a block starts in Phase 1 (with the engine's rule, Phase 1 is Phase 2 by another name)
        self.refines = config.refinement and config.max_refine_steps > 0 and config.phase1_commits != "engine"
        self.needs_kl = self.refines or config.early_stop or track_kl  # stable_slack acts under early_stop

    def max_forwards_per_block(self, block_length: int) -> int:
        """Upper bound on forwards spent on one block (the loop's termination bound)."""
        cfg = self.config
        refine = cfg.max_refine_steps if cfg.refinement else 0
        decode = max(block_length, cfg.steps_per_block or 0)
        return refine + decode

    def init_block(
        self, window: Tensor, block_length: int, active: Tensor | None = None, previous: BlockState | None = None
    ) -> BlockState:
        """Start a block. `window` [B, W] holds its tokens (W >= block_length); `active` [B] lets
        finished sequences sit the block out. `previous` is the state of the block just finished:
        when Phase 1 commits (``commits_in_refinement``) and the window reached past it (sequence scope), its last
        prediction of the positions this window covers is the reference of this block's first KL,
        so a block whose predictions already settled needs no Phase-1 forward to learn that."""
        if not 1 <= block_length <= window.shape[1]:
            raise ValueError(f"block_length must be in [1, {window.shape[1]}] (the window), got {block_length}")
        open_block = window[:, :block_length] == self.mask_id
        runs = open_block.any(dim=-1) if active is None else open_block.any(dim=-1) & active
        cfg = self.config
        start = Phase.REFINE if self.refines else Phase.DECODE
        phase = torch.where(runs, int(start), int(Phase.DONE))
        schedule = None
        if cfg.policy == "low_confidence":
            steps = cfg.steps_per_block or block_length
            schedule = policies.fixed_schedule(open_block.sum(dim=-1), steps)
        state = BlockState(tokens=window.clone(), block_length=block_length, phase=phase, schedule=schedule)
        if previous is not None and previous.prev_logp is not None:
            self.use_reference(state, previous.prev_logp[:, previous.block_length :])
        return state

    def use_reference(self, state: BlockState, reference: Tensor | None) -> None:
        """When Phase 1 commits (``commits_in_refinement``: ``sure``, ``engine``, or ``auto`` under a
        parallel rule), make `reference` [B, W', V] -- the latest earlier prediction of the window's
        first W' positions, e.g. from the previous block's last forward or a full forward at the
        block start -- the reference of the block's first KL. A
        reference that does not cover the tracked window (block scope needs the block, sequence
        scope the whole window) is not used. Call before the block's first `step`."""
        if reference is None or not self.config.commits_in_refinement:
            return
        width = state.tokens.shape[1] if self.config.early_stop_scope == "sequence" else state.block_length
        if reference.shape[0] == state.tokens.shape[0] and reference.shape[1] >= width:
            state.prev_logp = reference[:, :width]

    def block_inputs(self, state: BlockState, token_embeddings: Tensor) -> Tensor:
        """Input embeddings of the block: committed tokens as they are, open positions as their
        mixture (or the bare mask before the first prediction / with mixing off)."""
        if state.mixture is None:
            return token_embeddings
        open_block = (state.tokens[:, : state.block_length] == self.mask_id).unsqueeze(-1)
        return torch.where(open_block, state.mixture, token_embeddings)

    def step(
        self,
        state: BlockState,
        logits: Tensor,
        generator: torch.Generator | None = None,
        select: Select | None = None,
    ) -> Tensor:
        """Consume one forward's logits for the window ([B, W, V], prediction *for* each position)
        and update `state` in place. Returns the [B, W] mask of positions committed now.

        `select` lets an integration commit with its engine's own function (e.g. Fast-dLLM's
        `get_transfer_index`) instead of the config's policy; LRD's phases, mixtures and early stop
        are unchanged."""
        cfg, n = self.config, state.block_length
        # idle: no rule reads a KL on this step (the trace is off, nothing refines), so none is formed
        kl_idle = self._reads_no_kl(state)
        if select is not None and kl_idle:
            return self._engine_step(state, logits, select)
        self._check_logits(state, logits)
        active = state.active
        open_window = state.tokens == self.mask_id
        open_block = open_window[:, :n]

        logp = mixture.log_probs(logits, self.mask_id)
        tracked = logp if cfg.early_stop_scope == "sequence" else logp[:, :n]
        kl_block = kl_window = kl_pos = None
        if not kl_idle:
            kl_block, kl_window, kl_pos = self._kl(state.prev_logp, tracked, open_window, n)
        if self.track_kl:
            state.kl_trace.append(kl_block.masked_fill(~active, torch.nan))

        refining, decoding = self._advance_phase(state, active, kl_block)
        state.forwards += active.long()

        ent_block = probs_block = None
        if cfg.policy == "lowest_entropy":
            probs_block = logp[:, :n].exp()  # read by the entropy and by the nucleus
            ent_block = mixture.entropy(logp[:, :n], probs_block)
        x0 = self.predict(logp, generator)
        confidence = logp.gather(-1, x0.unsqueeze(-1)).squeeze(-1).exp()  # [B, W]
        candidates = open_block & decoding.unsqueeze(-1)
        commit = torch.zeros_like(open_window)
        if select is None:
            commit[:, :n] = self._select(state, confidence[:, :n], ent_block, candidates)
        elif not mixture.host_reads_are_free(candidates) or bool(candidates.any()):  # nothing to ask: skip
            proposals, chosen = select(
                _without_mask(logits[:, :n], self.mask_id), candidates, state.tokens[:, :n], state.decode_steps
            )
            commit[:, :n] = chosen & candidates
            x0[:, :n] = torch.where(commit[:, :n], proposals, x0[:, :n])
        if cfg.phase1_commits == "sure":
            commit[:, :n] |= rules.sure_commits(confidence[:, :n], open_block & refining.unsqueeze(-1), cfg.threshold)
        state.decode_steps += decoding.long()

        if cfg.early_stop and not kl_idle:
            # the composed mode lets settled positions commit in Phase 1 too: only the unsettled refine
            settling = active if cfg.commits_in_refinement else decoding
            left_open = open_window & ~commit
            if cfg.stable_slack > 0:
                gate = rules.relative_gate(cfg.threshold, cfg.stable_slack)
                stable = rules.stable_commits(
                    kl_pos[:, :n],
                    confidence[:, :n],
                    open_block & settling.unsqueeze(-1) & left_open[:, :n],
                    cfg.tau_decode,
                    gate,
                )
                commit[:, :n] |= stable
                left_open[:, :n] &= ~stable
            in_block = rules.positions_in_block(commit.shape[1], n, commit.device)
            fires = rules.early_stop_fires(
                cfg.early_stop_rule, cfg.early_stop_scope, settling, kl_block, kl_window, in_block, cfg.tau_decode
            )
            gate: float | Tensor = cfg.early_stop_confidence
            if commit.shape[1] > n and (later := rules.later_gate(cfg, n)) < gate:  # the window passes the block
                gate = torch.where(in_block, gate, later)
            extra = rules.early_stop_commits(
                cfg.early_stop_rule, fires, left_open, kl_pos, confidence, cfg.tau_decode, gate
            )
            if cfg.later_commits_at == "block_end" and commit.shape[1] > n:
                extra[:, n:] &= rules.block_finishes(left_open[:, :n] & ~extra[:, :n]).unsqueeze(-1)
            state.early_stopped |= extra[:, :n].any(dim=-1)
            commit |= extra
            if cfg.early_stop_scope == "sequence":
                state.finished_sequence |= rules.sequence_finished(
                    cfg.early_stop_rule, settling, kl_window, cfg.tau_decode, left_open & ~extra
                )

        state.tokens = torch.where(commit, x0, state.tokens)
        open_after = state.tokens[:, :n] == self.mask_id
        state.phase = state.phase.masked_fill(active & ~open_after.any(dim=-1), int(Phase.DONE))
        # keep this prediction only where a later KL reads it
        state.prev_logp = None if kl_idle else self._latest_prediction(state.prev_logp, tracked, active)
        if cfg.mixing:
            self._mix(state, logp[:, :n], open_after, ent_block, probs_block)
        return commit

    def _reads_no_kl(self, state: BlockState) -> bool:
        """Whether no rule reads a KL on this step: every LRD feature that needs one is off, or the
        window is the block, nothing refines or traces the KL, and the stop can only repeat the
        engine's rule (`rules.stop_within_engine`). With an engine's rule, such a step is the rule
        plus the mixtures (`_engine_step`)."""
        if not self.needs_kl:
            return True
        n = state.block_length
        if self.refines or self.track_kl or state.tokens.shape[1] != n or not self.engine_ranks_by_confidence:
            return False
        return rules.stop_within_engine(self.config, n)

    def _mix(
        self,
        state: BlockState,
        logp_block: Tensor,
        open_block: Tensor,
        ent: Tensor | None = None,
        probs: Tensor | None = None,
    ) -> None:
        """The next forward's mixture inputs from this forward's prediction of the block (`ent` and
        `probs` when the caller has them) at the positions still open ([B, n] `open_block`); a
        committed position gets the bare mask, which no forward reads, and so does an open one whose
        top-1 probability is below ``mix_min_confidence``. On the CPU, where reading
        `open_block` is free, only the open positions' nuclei are formed (the nucleus's top-k is
        the costliest part of a step over a large vocabulary), and a finished block gets none."""
        cfg = self.config
        if cfg.mix_min_confidence > 0:  # below the floor a position is only a guess: the bare mask
            open_block = open_block & (logp_block.amax(dim=-1) >= math.log(cfg.mix_min_confidence))
        recipe = functools.partial(
            mixture.mixture_recipe, top_p=cfg.top_p, r_f=cfg.r_f, alpha_form=cfg.alpha_form, cap=cfg.nucleus_cap
        )
        if not mixture.host_reads_are_free(open_block):
            full = recipe(logp_block, ent=ent, probs=probs)
            state.recipe = mixture.MixtureRecipe(full.ids, full.weights, torch.where(open_block, full.alpha, 0.0))
        elif not bool(open_block.any()):
            state.recipe = state.mixture = None  # nothing to mix: the open positions (if any) get the bare mask
            return
        else:
            subset = [None if t is None else t[open_block] for t in (ent, probs)]
            state.recipe = recipe(logp_block[open_block], ent=subset[0], probs=subset[1]).place(open_block)
        if self.embedding is not None:
            state.mixture = state.recipe.embed(self.embedding, self.mask_id).to(self.embedding.dtype)

    def _advance_phase(self, state: BlockState, active: Tensor, kl_block: Tensor | None) -> tuple[Tensor, Tensor]:
        """Which active sequences refine on this forward and which decode; Phase 1 ends once the
        block's KL is < tau_refine or max_refine_steps forwards have refined. A sampler that never
        refines (``refine_commit="engine"``, refinement off) decodes every active sequence."""
        if not self.refines:
            return torch.zeros_like(active), active
        cfg = self.config
        refining = active & (state.phase == Phase.REFINE) & ~(kl_block < cfg.tau_refine)
        refining &= state.refine_steps < cfg.max_refine_steps
        decoding = active & ~refining
        state.phase = state.phase.masked_fill(decoding, int(Phase.DECODE))
        state.refine_steps += refining.long()
        return refining, decoding

    def _engine_step(self, state: BlockState, logits: Tensor, select: Select) -> Tensor:
        """`step` on an engine's own rule when no KL is read (`_reads_no_kl`): the rule commits, and
        with mixing on the open rest get their mixtures; no prediction or KL of LRD's own is formed.
        With every LRD feature off the plugin so costs what the engine's step costs; in a loop whose
        window is the block (Fast-dLLM's dual cache, SGLang) the default adds only the mixtures.
        Same commits, statistics and mixtures as the full `step` (tests compare them). All of it runs
        once per forward, so it keeps to the few tensor operations the bookkeeping needs."""
        n, width = state.block_length, state.tokens.shape[1]
        self._check_logits(state, logits, width=None if n == width else n)
        active = state.active
        block = state.tokens if n == width else state.tokens[:, :n]
        open_block = block == self.mask_id
        candidates = open_block & active.unsqueeze(-1)
        block_logits = _without_mask(logits if n == width else logits[:, :n], self.mask_id)
        # the mask at -inf: mixture.log_probs; taken before the engine's function sees the logits
        logp_block = torch.log_softmax(block_logits.float(), dim=-1) if self.config.mixing else None
        proposals, chosen = select(block_logits, candidates, block, state.decode_steps)
        steps = active.long()
        state.forwards += steps
        state.decode_steps += steps
        chosen = chosen & candidates
        tokens = torch.where(chosen, proposals, block)
        open_after = tokens == self.mask_id
        state.phase = state.phase.masked_fill(active & ~open_after.any(dim=-1), int(Phase.DONE))
        state.prev_logp = None  # no later KL reads a prediction of this step
        if logp_block is not None:
            self._mix(state, logp_block, open_after)
        if n == width:
            state.tokens = tokens
            return chosen
        state.tokens[:, :n] = tokens
        commit = torch.zeros_like(state.tokens, dtype=torch.bool)
        commit[:, :n] = chosen
        return commit

    # --- pieces of a step ----------------------------------------------------------------------
    def _check_logits(self, state: BlockState, logits: Tensor, width: int | None = None) -> None:
        """Shape, then NaN or +inf in the first `width` positions (all by default), found with one
        reduction: a row's max is NaN or +inf iff the row holds one (or is -inf throughout)."""
        self._check_shape(state, logits)
        # a sum in fp64 cannot overflow from finite fp32/bf16 maxima, and NaN or inf survives it
        checked = logits if width is None else logits[:, :width]
        if not math.isfinite(checked.amax(dim=-1).sum(dtype=torch.float64)):
            raise ValueError(BAD_LOGITS)

    def _check_shape(self, state: BlockState, logits: Tensor) -> None:
        batch, width = state.tokens.shape
        if logits.dim() != 3 or logits.shape[0] != batch or logits.shape[1] != width:
            raise ValueError(
                f"logits must have shape [{batch}, {width}, vocab] (batch, window), got {tuple(logits.shape)}"
            )
        rows = logits.shape[-1] if self.embedding is None else self.embedding.shape[0]
        if not self.mask_id < logits.shape[-1] <= rows:
            raise ValueError(
                f"logits vocabulary ({logits.shape[-1]}) must contain mask_id={self.mask_id} and be at most "
                f"the embedding table's {rows} rows"
            )

    @staticmethod
    def _latest_prediction(prev: Tensor | None, now: Tensor, active: Tensor) -> Tensor:
        """The reference of the next KL: this forward's prediction for the sequences that took part in
        it, and a finished sequence's own last one. A finished row still rides along in the batch's
        forwards; its prediction there sees its final tokens, and keeping it would hand the next
        block's first KL a reference the row alone never has (a sequence must decode the same alone
        as in any batch); a row that has no earlier prediction gets -inf log-probs (an infinite KL, as
        with no reference, as in `BlockState.regroup`). Where every row took part, nothing is selected
        (no host read off the CPU)."""
        if mixture.host_reads_are_free(active) and bool(active.all()):
            return now
        if prev is None:
            return now.masked_fill(~active[:, None, None], -torch.inf)
        return torch.where(active[:, None, None], now, prev)

    @staticmethod
    def _kl(prev: Tensor | None, logp: Tensor, open_window: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
        """Mean KL(p_t || p_{t-1}) over open positions of the block and of the tracked window, and
        the per-position KL over the window ([B, W], inf where nothing is tracked or known yet)."""
        batch, width = open_window.shape
        if prev is None:
            inf = torch.full((batch,), torch.inf, device=logp.device)
            return inf, inf, torch.full((batch, width), torch.inf, device=logp.device)
        per_pos = mixture.kl_divergence(logp, prev)
        open_tracked = open_window[:, : per_pos.shape[1]]
        block = mixture.masked_mean(per_pos[:, :n], open_tracked[:, :n])
        window = mixture.masked_mean(per_pos, open_tracked)
        if per_pos.shape[1] == width:
            return block, window, per_pos
        untracked = torch.full((batch, width - per_pos.shape[1]), torch.inf, device=logp.device)
        return block, window, torch.cat((per_pos, untracked), dim=1)

    def predict(self, logp: Tensor, generator: torch.Generator | None) -> Tensor:
        """Greedy argmax, or Gumbel-max sampling at the configured temperature (float64, as the
        base samplers do)."""
        if self.config.temperature == 0:
            return logp.argmax(dim=-1)
        uniform = torch.rand(logp.shape, generator=generator, device=logp.device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-300)))
        return (logp.double() / self.config.temperature + gumbel).argmax(dim=-1)

    def _select(self, state: BlockState, confidence: Tensor, ent: Tensor | None, candidates: Tensor) -> Tensor:
        cfg = self.config
        if cfg.policy == "lowest_entropy":
            assert ent is not None
            return policies.lowest_entropy(ent, candidates)
        if cfg.policy == "threshold":
            return policies.threshold(confidence, candidates, cfg.threshold)
        if cfg.policy == "factor":
            return policies.factor(confidence, candidates, cfg.factor)
        assert state.schedule is not None
        steps = state.schedule.shape[1]
        # past the schedule (only reachable if a caller pre-committed tokens), commit everything
        k = torch.where(
            state.decode_steps < steps,
            state.schedule.gather(1, state.decode_steps.clamp(max=steps - 1).unsqueeze(-1)).squeeze(-1),
            candidates.sum(dim=-1),
        )
        return policies.top_k_confidence(confidence, candidates, k)


def check_mask_id(mask_id: object, vocab: int | None) -> None:
    """The mask id must be a plain int row of the vocabulary (a bool or float would index wrongly)."""
    allowed = "a token id >= 0" if vocab is None else f"in [0, {vocab - 1}]"
    if not isinstance(mask_id, int) or isinstance(mask_id, bool):
        raise TypeError(f"mask_id must be an int token id {allowed}, got {mask_id!r}")
    if mask_id < 0 or (vocab is not None and mask_id >= vocab):
        raise ValueError(f"mask_id must be {allowed} (the model's vocabulary), got {mask_id}")


def _without_mask(logits: Tensor, mask_id: int) -> Tensor:
    """A copy of `logits` in which the mask token can never win an argmax or carry probability."""
    out = logits.clone()
    out[..., mask_id] = -torch.inf
    return out
