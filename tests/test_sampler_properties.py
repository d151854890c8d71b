"""Property tests over random logit streams and a random bidirectional field."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrd_plugin import LRDConfig, LRDSampler, generate, mixture, policies
from lrd_plugin.sampler import BlockState
from tests.fields import RandomField

VOCAB, MASK = 24, 23

configs = st.builds(
    LRDConfig,
    policy=st.sampled_from(["lowest_entropy", "low_confidence", "threshold", "factor"]),
    refinement=st.booleans(),
    mixing=st.booleans(),
    early_stop=st.booleans(),
    early_stop_scope=st.sampled_from(["block", "sequence"]),
    early_stop_rule=st.sampled_from(["paper", "kl_gated", "per_position"]),
    early_stop_confidence=st.floats(0.0, 1.0),
    tau_refine=st.floats(0.0, 2.0),
    tau_decode=st.floats(0.0, 2.0),
    max_refine_steps=st.integers(0, 5),
    refine_commit=st.sampled_from(["auto", "none", "sure", "engine"]),
    stable_slack=st.sampled_from([0.0, 0.5, 2.0, 50.0]),
    mix_min_confidence=st.sampled_from([0.0, 0.0, 0.3, 1.0]),
    later_gate=st.sampled_from(["auto", "early_stop"]),
    later_commit=st.sampled_from(["auto", "block_end", "every_step"]),
    r_f=st.floats(0.01, 1.0),
    top_p=st.floats(0.05, 1.0),
    threshold=st.floats(0.0, 1.0),
    factor=st.floats(0.1, 4.0),
    temperature=st.sampled_from([0.0, 0.0, 1.0]),
    nucleus_cap=st.integers(1, 30),
)


def _fix_schedule(cfg: LRDConfig, steps: int) -> LRDConfig:
    return cfg.replace(steps_per_block=steps) if cfg.policy == "low_confidence" else cfg


@settings(max_examples=120, deadline=None)
@given(
    cfg=configs,
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 3),
    block=st.integers(1, 7),
    suffix=st.integers(0, 5),
    scale=st.floats(0.1, 10.0),
    steps=st.integers(1, 9),
)
def test_random_logit_streams_commit_each_position_once_and_terminate(cfg, seed, batch, block, suffix, scale, steps):
    cfg = _fix_schedule(cfg, steps)
    g = torch.Generator().manual_seed(seed)
    table = torch.randn(VOCAB, 6, generator=g)
    sampler = LRDSampler(cfg, table, MASK)
    window = torch.full((batch, block + suffix), MASK)
    active = torch.rand(batch, generator=g) < 0.8
    state = sampler.init_block(window, block, active=active)
    committed_at: dict[tuple[int, int], int] = {}
    forwards = 0
    while not state.done:
        before = state.tokens.clone()
        commit = sampler.step(state, torch.randn(batch, block + suffix, VOCAB, generator=g) * scale, g)
        forwards += 1
        assert not (commit & (before != MASK)).any(), "a committed position was committed again"
        assert torch.equal(state.tokens[before != MASK], before[before != MASK]), "a committed token changed"
        assert not (state.tokens[commit] == MASK).any(), "the mask token was committed as an answer"
        if cfg.later_commits_at == "block_end":
            block_open = (state.tokens[:, :block] == MASK).any(dim=-1)
            assert not (commit[:, block:].any(dim=-1) & block_open).any(), "a later commit before the block's end"
        for b, j in commit.nonzero().tolist():
            committed_at[(b, j)] = forwards
        assert forwards <= sampler.max_forwards_per_block(block)
    assert not (state.tokens[active, :block] == MASK).any()
    assert (state.tokens[~active] == MASK).all(), "an inactive sequence was touched"
    assert torch.equal(state.forwards, (state.refine_steps + state.decode_steps))
    refines = cfg.refinement and cfg.phase1_commits != "engine"
    assert (state.refine_steps <= (cfg.max_refine_steps if refines else 0)).all()


@settings(max_examples=40, deadline=None)
@given(
    cfg=configs,
    seed=st.integers(0, 2**16),
    prompt_len=st.integers(1, 5),
    block=st.integers(1, 5),
    blocks=st.integers(1, 3),
    cache=st.sampled_from(["none", "prefix"]),
    shift=st.integers(0, 1),
    steps=st.integers(1, 6),
    sharpness=st.floats(0.5, 12.0),
)
def test_generate_batch_equals_per_sample_is_deterministic_and_bounded(
    cfg, seed, prompt_len, block, blocks, cache, shift, steps, sharpness
):
    cfg = _fix_schedule(cfg, steps)
    model = RandomField(VOCAB, 8, MASK, seed=seed, sharpness=sharpness, shift=shift)
    prompt = torch.randint(0, MASK, (3, prompt_len), generator=torch.Generator().manual_seed(seed))
    kwargs = {"gen_length": block * blocks, "block_length": block, "config": cfg, "cache": cache}
    # Sampling draws one noise tensor per step for the whole batch, so only greedy runs are batch-invariant.
    gen = (lambda: torch.Generator().manual_seed(seed)) if cfg.temperature else (lambda: None)
    out = generate(model, prompt, generator=gen(), **kwargs)
    again = generate(model, prompt, generator=gen(), **kwargs)
    assert torch.equal(out.sequences, again.sequences) and out.nfe == again.nfe
    assert torch.equal(out.sequences[:, :prompt_len], prompt)
    assert not (out.generated == MASK).any()
    bound = blocks * LRDSampler(cfg, model.embedding_table(), MASK).max_forwards_per_block(block)
    assert int(out.nfe_per_sequence.max()) <= out.nfe <= bound
    if cfg.temperature == 0:
        for row in range(3):
            alone = generate(model, prompt[row : row + 1], **kwargs)
            assert torch.equal(alone.sequences[0], out.sequences[row])
            assert alone.nfe == int(out.nfe_per_sequence[row])


def test_a_row_that_finished_its_block_keeps_its_own_kl_reference():
    """Regression (found by the property above): a row whose block is finished still rides along in
    the batch's forwards. Its prediction there already sees its final tokens; kept as the reference of
    the next block's first KL, it made that KL 0 and let the stable commits fire a forward earlier than
    the row alone would (3 forwards in the batch, 4 alone, another token)."""
    cfg = LRDConfig(
        policy="lowest_entropy",
        refinement=False,
        mixing=False,
        early_stop_rule="kl_gated",
        early_stop_confidence=1.0,
        tau_decode=1.0,
        refine_commit="sure",  # Phase 1 commits, so a block's first KL reads the previous block's prediction
        stable_slack=2.0,
        threshold=0.0,
    )
    model = RandomField(VOCAB, 8, MASK, seed=1, sharpness=3.0, shift=1)
    prompt = torch.randint(0, MASK, (3, 2), generator=torch.Generator().manual_seed(1))
    kwargs = {"gen_length": 6, "block_length": 3, "config": cfg}
    out = generate(model, prompt, **kwargs)
    for row in range(3):
        alone = generate(model, prompt[row : row + 1], **kwargs)
        assert torch.equal(alone.sequences[0], out.sequences[row])
        assert alone.nfe == int(out.nfe_per_sequence[row])


def test_an_engine_that_does_not_rank_by_confidence_keeps_the_stop():
    """The stop is skipped as a repeat of the engine's rule only where that rule commits confident
    positions on sight. An engine that ranks by other scores (Fast-dLLM's random remasking; here one
    that commits nothing) declares it, and a settled, confident position is then still committed."""
    cfg = LRDConfig(policy="threshold", threshold=0.9)
    logits = torch.zeros(1, 3, VOCAB)
    logits[0, 0, 5] = 20.0  # settled and above the stop's 0.999 gate

    def commits(ranks: bool) -> int:
        sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK, engine_ranks_by_confidence=ranks)
        state = sampler.init_block(torch.full((1, 3), MASK), 3)

        def nothing(block_logits, candidates, tokens, decode_step):
            return block_logits.argmax(-1), torch.zeros_like(candidates)

        return sum(int(sampler.step(state, logits, select=nothing).sum()) for _ in range(2))

    assert commits(ranks=True) == 0  # the shortcut trusts the engine to commit it
    assert commits(ranks=False) == 1  # the second forward's KL is 0: the stop commits it
    threshold_cfg = LRDSampler(cfg, None, MASK, engine_ranks_by_confidence=False).config
    assert threshold_cfg.later_gate == "early_stop"  # the engine's bar is no confidence to gate by


def test_a_row_that_sat_out_a_block_without_a_reference_gets_none_from_the_batch():
    """Regression (review of stop 41): a row whose first block was already filled sits that block out,
    and alone it reaches the next block with no reference for its first KL. In a batch it rode along
    in a forward before any reference existed; that forward's prediction must not become its
    reference (it made the next block's first KL 0, and the stop committed a forward early)."""
    cfg = LRDConfig(policy="threshold", threshold=0.99, mixing=False, early_stop_confidence=0.5)
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, VOCAB, generator=g)
    logits[..., 0] += 4.0  # token 0 leads at about 0.8: above the stop's gate, below the threshold
    filled = torch.tensor([[MASK, MASK, MASK, MASK], [1, 2, MASK, MASK]])

    def second_block_commits(rows: slice) -> torch.Tensor:
        sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
        state = sampler.init_block(filled[rows], 2)
        if not state.done:  # alone, the filled row needs no forward for its first block
            sampler.step(state, logits[rows])
        state = sampler.init_block(state.tokens[:, 2:], 2, previous=state)
        return sampler.step(state, logits[rows, 2:])

    assert torch.equal(second_block_commits(slice(1, 2))[0], second_block_commits(slice(0, 2))[1])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    policy=st.sampled_from(["lowest_entropy", "threshold", "factor"]),
    scope=st.sampled_from(["block", "sequence"]),
)
def test_prefix_cache_changes_nothing_but_the_cost(seed, policy, scope):
    model = RandomField(VOCAB, 8, MASK, seed=seed)
    prompt = torch.randint(0, MASK, (2, 4), generator=torch.Generator().manual_seed(seed))
    cfg = LRDConfig(policy=policy, early_stop_scope=scope)
    plain = generate(model, prompt, gen_length=12, block_length=4, config=cfg)
    model.calls.clear()
    cached = generate(model, prompt, gen_length=12, block_length=4, config=cfg, cache="prefix")
    assert torch.equal(plain.sequences, cached.sequences) and plain.nfe == cached.nfe
    assert all(new + past == 16 and (past == 0 or new < 16) for new, past in model.calls)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    tau=st.floats(0.01, 3.0),
    gate=st.floats(0.0, 1.0),
    scope=st.sampled_from(["block", "sequence"]),
    scale=st.floats(0.5, 12.0),
    rule=st.sampled_from(["kl_gated", "per_position"]),
)
def test_gated_early_stops_never_commit_an_unstable_or_unconfident_position(seed, tau, gate, scope, scale, rule):
    """One lowest-entropy commit per step is the policy; whatever else a step commits came from the
    early stop and must be stable (own KL < tau_decode) and confident (>= early_stop_confidence)."""
    cfg = LRDConfig(
        refinement=False, tau_decode=tau, early_stop_rule=rule, early_stop_confidence=gate, early_stop_scope=scope
    )
    g = torch.Generator().manual_seed(seed)
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 6, generator=g), MASK)
    block, width = 5, 9
    state = sampler.init_block(torch.full((2, width), MASK), block)
    drift = torch.randn(2, width, VOCAB, generator=g) * scale
    prev = None
    while not state.done:
        logits = drift + torch.randn(2, width, VOCAB, generator=g) * 0.3  # predictions that settle
        before = state.tokens.clone()
        commit = sampler.step(state, logits)
        logp = mixture.log_probs(logits, MASK)
        confident = logp.max(dim=-1).values.exp() >= gate
        stable = torch.zeros_like(confident) if prev is None else mixture.kl_divergence(logp, prev) < tau
        prev = logp
        for row in range(2):
            if not (before[row, :block] == MASK).any():
                assert not commit[row].any()
                continue
            ungated = commit[row] & ~(confident[row] & stable[row])
            assert int(ungated.sum()) <= 1, "the early stop finalised an unstable or unconfident position"
            assert not commit[row, block:].any() or scope == "sequence"


@pytest.mark.parametrize("rule", ["kl_gated", "per_position"])
def test_gated_rules_without_gates_are_the_paper_rule(rule):
    """tau_decode huge and confidence gate 0: every covered position passes, as in the paper."""
    model = RandomField(VOCAB, 8, MASK, seed=3, sharpness=6.0)
    prompt = torch.randint(0, MASK, (2, 4), generator=torch.Generator().manual_seed(3))
    for scope in ("block", "sequence"):
        paper = LRDConfig.paper(tau_decode=1e9, early_stop_scope=scope)
        gated = paper.replace(early_stop_rule=rule, early_stop_confidence=0.0)
        a = generate(model, prompt, gen_length=12, block_length=4, config=paper)
        b = generate(model, prompt, gen_length=12, block_length=4, config=gated)
        assert torch.equal(a.sequences, b.sequences) and a.nfe == b.nfe
        assert torch.equal(a.early_stopped, b.early_stopped) and a.early_stopped.any()


def _peaked(rows: list[tuple[int, float]]) -> torch.Tensor:
    """[1, len(rows), VOCAB] logits, each row's prediction `token` with logit margin `margin`."""
    logits = torch.zeros(1, len(rows), VOCAB)
    for i, (token, margin) in enumerate(rows):
        logits[0, i, token] = margin
    return logits


@pytest.mark.parametrize("rule, commits_stable_neighbour", [("kl_gated", False), ("per_position", True)])
def test_per_position_commits_a_stable_confident_position_beside_an_unstable_one(rule, commits_stable_neighbour):
    """Block of 4 decoded one lowest-entropy token per step. At the second step position 1 is the
    policy's commit, position 2 is stable and confident, position 3 flips its prediction so the
    block's mean KL stays above tau_decode: kl_gated waits for the mean, per_position commits
    position 2 at once; neither finalises position 3."""
    cfg = LRDConfig(refinement=False, early_stop_rule=rule, early_stop_confidence=0.9)
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 6), MASK)
    state = sampler.init_block(torch.full((1, 4), MASK), 4)
    first = sampler.step(state, _peaked([(1, 20.0), (2, 16.0), (5, 14.0), (3, 8.0)]))
    assert first.tolist() == [[True, False, False, False]]
    second = sampler.step(state, _peaked([(1, 20.0), (2, 16.0), (5, 14.0), (4, 8.0)]))
    assert second.tolist() == [[False, True, commits_stable_neighbour, False]]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 3),
    block=st.integers(1, 7),
    threshold=st.floats(0.0, 1.0),
    scale=st.floats(0.1, 10.0),
)
def test_the_engine_fast_path_equals_the_full_step(seed, batch, block, threshold, scale):
    """With every LRD feature off and an engine's rule, `step` runs only the rule; the full step
    (forced here by tracking the KL) commits the same tokens with the same statistics."""

    def select(logits, candidates, tokens, decode_step):
        confidence, proposals = logits.softmax(dim=-1).max(dim=-1)
        return proposals, policies.threshold(confidence, candidates, threshold)

    g = torch.Generator().manual_seed(seed)
    cfg = LRDConfig.base(policy="threshold", threshold=threshold)
    fast, full = (LRDSampler(cfg, None, MASK, track_kl=track) for track in (False, True))
    active = torch.rand(batch, generator=g) < 0.8
    states = [s.init_block(torch.full((batch, block), MASK), block, active=active) for s in (fast, full)]
    while not states[0].done:
        logits = torch.randn(batch, block, VOCAB, generator=g) * scale
        commits = [s.step(state, logits, select=select) for s, state in zip((fast, full), states, strict=True)]
        assert torch.equal(commits[0], commits[1])
        for name in ("tokens", "phase", "forwards", "decode_steps", "refine_steps"):
            assert torch.equal(getattr(states[0], name), getattr(states[1], name)), name
    assert states[1].done
    assert states[0].kl_trace == [] and len(states[1].kl_trace) == int(states[1].forwards.max())  # traced on request


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), block=st.integers(2, 6), refine_commit=st.sampled_from(["none", "sure"]))
def test_regrouped_rows_step_as_their_own_states(seed, block, refine_commit):
    """`BlockState.regroup` takes rows of several states (one a block already under way, with a KL
    reference; one just started, without): a step of the regrouped batch commits, measures the KL and
    forms the mixtures of each row as a step of its own state does."""
    cfg = LRDConfig(policy="threshold", refine_commit=refine_commit, tau_refine=0.05, max_refine_steps=2)
    emb = torch.randn(VOCAB, 8, generator=torch.Generator().manual_seed(seed))
    sampler = LRDSampler(cfg, emb, MASK, track_kl=True)
    g = torch.Generator().manual_seed(seed)
    under_way = sampler.init_block(torch.full((2, block), MASK), block)
    sampler.step(under_way, torch.randn(2, block, VOCAB, generator=g) * 4)
    started = sampler.init_block(torch.full((1, block), MASK), block)
    grouped = BlockState.regroup([(under_way, torch.tensor([1, 0])), (started, torch.tensor([0]))])
    logits = torch.randn(3, block, VOCAB, generator=g) * 4
    together = sampler.step(grouped, logits)
    apart = [sampler.step(under_way, logits[[1, 0]]), sampler.step(started, logits[2:])]
    assert torch.equal(together, torch.cat([apart[0][[1, 0]], apart[1]]))
    assert torch.equal(grouped.tokens, torch.cat([under_way.tokens[[1, 0]], started.tokens]))
    kl_apart = torch.cat([under_way.kl_trace[-1][[1, 0]], started.kl_trace[-1]])
    torch.testing.assert_close(grouped.kl_trace[-1], kl_apart, equal_nan=True)
    assert grouped.kl_trace[-1][2] == torch.inf  # no reference yet: an infinite KL
    for name in ("phase", "forwards", "decode_steps", "refine_steps"):
        apart_values = torch.cat([getattr(under_way, name)[[1, 0]], getattr(started, name)])
        assert torch.equal(getattr(grouped, name), apart_values), name
    for rows, state, order in (([0, 1], under_way, [1, 0]), ([2], started, [0])):
        if state.mixture is not None:  # a finished block has none (and its rows in the batch are not read)
            torch.testing.assert_close(grouped.mixture[rows], state.mixture[order])


def test_regroup_refuses_no_parts_and_mixed_block_lengths():
    sampler = LRDSampler(LRDConfig(), None, MASK)
    with pytest.raises(ValueError, match="at least one"):
        BlockState.regroup([])
    short, long = (sampler.init_block(torch.full((1, n), MASK), n) for n in (2, 3))
    with pytest.raises(ValueError, match="block_length"):
        BlockState.regroup([(short, torch.tensor([0])), (long, torch.tensor([0]))])


def test_the_engine_fast_path_refuses_nan_logits():
    def select(logits, candidates, tokens, decode_step):
        return logits.argmax(dim=-1), candidates

    sampler = LRDSampler(LRDConfig.base(policy="threshold"), None, MASK)
    state = sampler.init_block(torch.full((1, 3), MASK), 3)
    logits = torch.randn(1, 3, VOCAB)
    logits[0, 1, 2] = torch.nan
    with pytest.raises(ValueError, match="NaN or \\+inf logits"):
        sampler.step(state, logits, select=select)


@settings(max_examples=80, deadline=None)
@given(
    cfg=configs,
    seed=st.integers(0, 2**16),
    batch=st.integers(1, 3),
    block=st.integers(1, 6),
    suffix=st.sampled_from([0, 0, 3]),
    scale=st.floats(0.1, 12.0),
    engine=st.booleans(),
)
def test_a_step_that_skips_the_block_kl_decodes_as_the_full_step(cfg, seed, batch, block, suffix, scale, engine):
    """Where nothing reads the block's KL (`rules.stop_within_engine`: the stop only repeats the
    threshold rule, or nothing needs a KL), `step` skips the KL and the stop; the full step (forced by
    tracking the KL) commits the same tokens in the same forwards and feeds the same mixtures, for
    every config, with or without an engine rule."""
    cfg = _fix_schedule(cfg, block)

    def select(logits, candidates, tokens, decode_step):
        confidence, proposals = logits.softmax(dim=-1).max(dim=-1)
        if cfg.policy == "factor":
            return proposals, policies.factor(confidence, candidates, cfg.factor)
        return proposals, policies.threshold(confidence, candidates, cfg.threshold)

    rule = select if engine and cfg.policy in ("threshold", "factor") else None
    emb = torch.randn(VOCAB, 8, generator=torch.Generator().manual_seed(seed))
    lean, full = (LRDSampler(cfg, emb, MASK, track_kl=track) for track in (False, True))
    g = torch.Generator().manual_seed(seed)
    draws = [torch.Generator().manual_seed(seed + 1) for _ in range(2)]
    states = [s.init_block(torch.full((batch, block + suffix), MASK), block) for s in (lean, full)]
    settled = torch.randn(batch, block + suffix, VOCAB, generator=g) * scale  # small steps: the stop fires
    for _ in range(lean.max_forwards_per_block(block)):
        if states[0].done:
            break
        logits = settled + 0.05 * torch.randn(settled.shape, generator=g)
        commits = [
            s.step(state, logits, draw, select=rule) for s, state, draw in zip((lean, full), states, draws, strict=True)
        ]
        assert torch.equal(commits[0], commits[1])
        for name in ("tokens", "phase", "forwards", "decode_steps", "refine_steps", "early_stopped"):
            assert torch.equal(getattr(states[0], name), getattr(states[1], name)), name
        # and the next forward's inputs: with an engine rule the lean step is the rule plus the mixtures
        assert (states[0].mixture is None) == (states[1].mixture is None)
        if states[0].mixture is not None:
            torch.testing.assert_close(states[0].mixture, states[1].mixture, rtol=1e-6, atol=1e-6)
    assert states[0].done and states[1].done


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), floor=st.floats(0.0, 1.0), scale=st.floats(0.1, 10.0), engine=st.booleans())
def test_mix_min_confidence_gives_the_bare_mask_below_the_floor_and_the_mixture_elsewhere(seed, floor, scale, engine):
    """An open position whose top-1 probability is below ``mix_min_confidence`` gets no token content
    (alpha 0: the bare mask) on the next forward; every other open position gets exactly the
    mixture it gets without the floor. On the engine's fast path and on the full step alike."""

    def select(logits, candidates, tokens, decode_step):
        confidence, proposals = logits.softmax(dim=-1).max(dim=-1)
        return proposals, policies.threshold(confidence, candidates, 0.9)

    g = torch.Generator().manual_seed(seed)
    batch, block = 3, 6
    base = LRDConfig(policy="threshold", early_stop=not engine)  # no KL read: the fast path
    samplers = [LRDSampler(base.replace(mix_min_confidence=f), None, MASK) for f in (floor, 0.0)]
    states = [s.init_block(torch.full((batch, block), MASK), block) for s in samplers]
    logits = torch.randn(batch, block, VOCAB, generator=g) * scale
    for sampler, state in zip(samplers, states, strict=True):
        sampler.step(state, logits, select=select if engine else None)
    open_ = states[0].tokens == MASK
    if not bool(open_.any()):
        return  # the block is finished: no forward reads a mixture of it
    # no recipe: no position gets a mixture (the CPU step forms none where none is read)
    floored, free = (torch.zeros(batch, block) if state.recipe is None else state.recipe.alpha for state in states)
    top = mixture.log_probs(logits, MASK).amax(dim=-1).exp()
    below = open_ & (top < floor * (1 - 1e-6))
    above = open_ & (top >= floor * (1 + 1e-6))
    assert torch.equal(floored[below], torch.zeros(int(below.sum())))
    torch.testing.assert_close(floored[above], free[above])


def test_the_default_mixes_only_a_prediction_with_a_majority_token_and_the_paper_every_open_position():
    """The default's floor (0.5) feeds back a position only when one token holds most of its
    probability; ``LRDConfig.paper()`` keeps Eq. 3's mixture at every open position."""
    logits = torch.full((1, 2, VOCAB), -10.0)
    logits[0, 0, :3] = 0.0  # three tokens share the mass: top-1 about 1/3
    logits[0, 1, 0] = 5.0  # one token holds almost all of it
    alphas = []
    for config in (LRDConfig(), LRDConfig.paper()):
        sampler = LRDSampler(config, None, MASK)
        state = sampler.init_block(torch.full((1, 2), MASK), 2)
        sampler.step(state, logits)  # Phase 1 commits nothing: both positions stay open
        assert bool((state.tokens == MASK).all())
        alphas.append(state.recipe.alpha[0])
    default, paper = alphas
    assert default[0] == 0 and default[1] > 0
    assert paper[0] > 0 and paper[1] > 0
