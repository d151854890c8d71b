"""The composed-mode rules: the engine's or the sure commits in Phase 1, stability-gated commits below the engine's
threshold, and the lookahead that gives loops with a block-only cache the sequence-scope stop."""

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrd_plugin import LRDConfig, LRDSampler, mixture, policies, rules
from lrd_plugin.lookahead import Lookahead

# the full-attention default shipped until stop 24: a second trained model for the tests on trained weights
# (kept in the git history; scripts/test.sh restores it with scripts/checkpoints.sh)
FIRST_DEFAULT = Path(__file__).resolve().parents[1] / "benchmarks" / "checkpoints" / "default_v1"

VOCAB, MASK = 12, 11


def peaked(tokens: list[list[int]], probs: list[list[float]]) -> torch.Tensor:
    """Logits whose argmax is `tokens` with probability `probs` (the rest spread evenly, mask excluded)."""
    batch, width = len(tokens), len(tokens[0])
    p = torch.tensor(probs).unsqueeze(-1)
    out = ((1 - p) / (VOCAB - 2)).expand(batch, width, VOCAB).clone()
    out.scatter_(-1, torch.tensor(tokens).unsqueeze(-1), p)
    out[..., MASK] = 1e-12
    return out.log()


def test_relative_gate_follows_the_engine_threshold():
    assert rules.relative_gate(0.9, 2.0) == pytest.approx(0.8)
    assert rules.relative_gate(0.95, 2.0) == pytest.approx(0.9)
    assert rules.relative_gate(0.9, 1.0) == pytest.approx(0.9)
    assert rules.relative_gate(0.9, 0.0) == 1.0
    assert rules.relative_gate(0.5, 5.0) == 0.0  # clamped to a probability


def test_phase1_commits_only_what_the_threshold_is_sure_of_and_no_forced_best():
    cfg = LRDConfig(refine_commit="sure", threshold=0.9, early_stop=False)
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((2, 3), MASK), 3)
    logits = peaked([[1, 2, 3], [4, 5, 6]], [[0.95, 0.5, 0.91], [0.6, 0.7, 0.8]])
    commit = sampler.step(state, logits)
    assert commit.tolist() == [[True, False, True], [False, False, False]]  # row 2: nothing forced
    assert state.tokens.tolist() == [[1, MASK, 3], [MASK, MASK, MASK]]
    assert (state.phase == 0).all()  # still refining: the first forward has no KL yet


def test_phase1_under_a_parallel_rule_commits_what_the_engine_would_forced_best_included():
    """The default (``auto``) under the threshold rule resolves to ``engine``: a forward with nothing
    above the threshold still commits the engine's best position, so Phase 1 never costs a forward
    the engine would not spend."""
    cfg = LRDConfig(policy="threshold", threshold=0.9, early_stop=False)
    assert cfg.phase1_commits == "engine" and LRDConfig().phase1_commits == "none"
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((2, 3), MASK), 3)
    logits = peaked([[1, 2, 3], [4, 5, 6]], [[0.95, 0.5, 0.91], [0.6, 0.7, 0.8]])
    commit = sampler.step(state, logits)
    assert commit.tolist() == [[True, False, True], [False, False, True]]  # row 2: the forced best
    assert state.refine_steps.tolist() == [0, 0]  # straight to Phase 2


def test_under_a_parallel_rule_the_default_decodes_as_lrd_without_phase1():
    """``engine`` makes Phase 1 commit with Phase 2's rule, so the default equals LRD with refinement
    off, token for token and forward for forward, on the trained default model."""
    from lrd_plugin import generate
    from lrd_plugin.loading import load_model
    from lrd_plugin.tasks import generate_examples

    loaded = load_model("default")
    ids, mask = loaded.encode_batch([e.prompt for e in generate_examples("arith", "test", 6)])
    for policy in ("threshold", "factor"):
        runs = [
            generate(loaded.denoiser, ids, attention_mask=mask, gen_length=64, block_length=32, config=cfg)
            for cfg in (LRDConfig(policy=policy), LRDConfig(policy=policy, refinement=False))
        ]
        assert torch.equal(runs[0].generated, runs[1].generated)
        assert runs[0].nfe == runs[1].nfe


def test_the_paper_commits_nothing_in_phase1():
    sampler = LRDSampler(LRDConfig.paper(threshold=0.9), torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 3), MASK), 3)
    assert not sampler.step(state, peaked([[1, 2, 3]], [[0.99, 0.99, 0.99]])).any()


def test_a_block_that_sure_commits_empty_is_done_after_one_forward():
    sampler = LRDSampler(LRDConfig(refine_commit="sure", threshold=0.9), torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 4), MASK), 4)
    sampler.step(state, peaked([[1, 2, 3, 4]], [[0.99, 0.95, 0.92, 0.91]]))
    assert state.done and state.forwards.tolist() == [1]


def test_stable_commits_pass_positions_below_the_engine_threshold_only_when_settled():
    """Threshold 0.9 commits the 0.95 position; slack 2 (gate 0.8) adds the stable 0.85 position,
    never the 0.85 position whose prediction moved, nor the stable 0.7 one."""
    cfg = LRDConfig(refinement=False, policy="threshold", threshold=0.9, stable_slack=2.0, early_stop_scope="block")
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 5), MASK), 5)
    first = peaked([[1, 2, 3, 4, 5]], [[0.5, 0.85, 0.85, 0.7, 0.6]])
    assert sampler.step(state, first).tolist() == [[False, True, False, False, False]]  # forced best only
    second = peaked([[1, 2, 7, 4, 5]], [[0.95, 0.85, 0.85, 0.7, 0.6]])
    commit = sampler.step(state, second)
    assert commit.tolist() == [[True, False, False, False, False]]  # position 2 moved, 3 under the gate
    third = peaked([[1, 2, 7, 4, 5]], [[0.95, 0.85, 0.85, 0.7, 0.6]])
    assert sampler.step(state, third).tolist() == [[False, False, True, False, False]]


def test_stable_commits_are_part_of_the_early_stop_ablation():
    cfg = LRDConfig(refinement=False, policy="threshold", stable_slack=2.0, early_stop=False)
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 3), MASK), 3)
    logits = peaked([[1, 2, 3]], [[0.95, 0.85, 0.3]])
    sampler.step(state, logits)
    assert sampler.step(state, logits).tolist() == [[False, True, False]]  # best of the rest, not the gate


def test_lookahead_commits_positions_settled_between_full_forwards():
    cfg = LRDConfig(early_stop_confidence=0.9)
    look = Lookahead(LRDSampler(cfg, torch.randn(VOCAB, 4), MASK), 2)
    tokens = torch.full((1, 6), MASK)
    first = peaked([[1, 2, 3, 4, 5, 6]], [[0.99] * 6])
    commit, _ = look.step(tokens, first, start=10)
    assert not commit.any()  # nothing to compare with yet
    # the next block starts 2 positions later: positions 12..15 are compared with the same positions
    later = peaked([[3, 9, 5, 6]], [[0.99, 0.99, 0.5, 0.99]])
    commit, tokens_after = look.step(torch.full((1, 4), MASK), later, start=12)
    assert commit.tolist() == [[True, False, False, True]]  # 13 changed its token, 14 is not confident
    assert tokens_after.tolist() == [[3, MASK, MASK, 6]]


def test_lookahead_is_off_without_the_sequence_scope():
    look = Lookahead(LRDSampler(LRDConfig(early_stop_scope="block"), torch.randn(VOCAB, 4), MASK), 2)
    logits = peaked([[1, 2]], [[0.999, 0.999]])
    for start in (0, 1):
        commit, tokens = look.step(torch.full((1, 2), MASK), logits, start)
        assert not commit.any() and (tokens == MASK).all()


def test_lookahead_keeps_committed_tokens():
    look = Lookahead(LRDSampler(LRDConfig(), torch.randn(VOCAB, 4), MASK), 2)
    logits = peaked([[1, 2]], [[0.9999, 0.9999]])
    look.step(torch.tensor([[MASK, 7]]), logits, 0)
    commit, tokens = look.step(torch.tensor([[MASK, 7]]), logits, 0)
    assert commit.tolist() == [[True, False]] and tokens.tolist() == [[1, 7]]


def test_rules_are_subsets_of_their_candidates():
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(3, 7, generator=g)
    kl = torch.rand(3, 7, generator=g)
    cand = torch.rand(3, 7, generator=g) < 0.5
    assert not (rules.sure_commits(conf, cand, 0.3) & ~cand).any()
    assert not (rules.stable_commits(kl, conf, cand, 0.5, 0.2) & ~cand).any()
    logp = mixture.log_probs(torch.randn(3, 7, VOCAB, generator=g), MASK)
    assert torch.isfinite(mixture.kl_divergence(logp, logp)).all()


@pytest.mark.parametrize("model", ["default", str(FIRST_DEFAULT)], ids=["default", "first default"])
def test_the_composed_mode_needs_fewer_forwards_than_the_threshold_rule_on_the_default(model):
    """On each trained default at 256 tokens with the prefix cache: Phase 1 commits what the threshold
    is sure of, each block's first KL uses the previous block's last prediction (so a settled block
    needs no refinement forward) and the settled EOS tail is committed early -- the same answers as
    the threshold rule alone, in fewer forwards; without the carried prediction it costs as much or
    more (as much on a model whose blocks settle on their first forward)."""
    from lrd_plugin import generate
    from lrd_plugin.loading import load_model
    from lrd_plugin.tasks import generate_examples

    if model == str(FIRST_DEFAULT) and not FIRST_DEFAULT.is_dir():
        pytest.fail(f"{FIRST_DEFAULT} is missing: restore it with `bash scripts/checkpoints.sh default_v1`")
    loaded = load_model(model)
    prompts = [e.prompt for e in generate_examples("list", "test", 4)]
    ids, mask = loaded.encode_batch(prompts)
    base = LRDConfig.base(policy="threshold", threshold=0.9)
    # the 0.999 gate after the block, as when the carried reference came: with the engine's bar there
    # a Phase 1 that commits nothing can settle the whole answer on its second forward
    composed = LRDConfig(
        policy="threshold", threshold=0.9, refine_commit="sure", stable_slack=2.0, later_gate="early_stop"
    )
    runs = {}
    for name, cfg in (
        ("base", base),
        ("composed", composed),
        ("paper phase 1", composed.replace(refine_commit="none")),
    ):
        runs[name] = generate(
            loaded.denoiser, ids, attention_mask=mask, gen_length=256, block_length=32, config=cfg, cache="prefix"
        )
    answers = {name: [loaded.decode(row.tolist()) for row in out.generated] for name, out in runs.items()}
    assert answers["composed"] == answers["base"]
    assert runs["composed"].nfe < runs["base"].nfe
    assert runs["composed"].nfe <= runs["paper phase 1"].nfe


def test_a_reference_prediction_is_used_only_in_the_composed_mode_and_when_it_covers_the_window():
    table = torch.randn(VOCAB, 4)
    settled = peaked([[1, 2, 3]], [[0.95, 0.95, 0.95]])
    logp = mixture.log_probs(settled, MASK)
    for refine_commit, expected in (("sure", [[True, True, True]]), ("none", [[False, False, False]])):
        cfg = LRDConfig(refine_commit=refine_commit, threshold=0.99, early_stop_confidence=0.9)
        sampler = LRDSampler(cfg, table, MASK)
        state = sampler.init_block(torch.full((1, 3), MASK), 3)
        sampler.use_reference(state, logp)
        assert sampler.step(state, settled).tolist() == expected  # settled since the reference
    sampler = LRDSampler(LRDConfig(refine_commit="sure", threshold=0.99, early_stop_confidence=0.9), table, MASK)
    state = sampler.init_block(torch.full((1, 3), MASK), 3)
    sampler.use_reference(state, logp[:, :2])  # does not cover the window: ignored
    assert not sampler.step(state, settled).any()


def test_lookahead_reference_is_the_last_full_forward_of_the_block():
    look = Lookahead(LRDSampler(LRDConfig(), torch.randn(VOCAB, 4), MASK), 2)
    assert look.reference(0, 2) is None
    logits = peaked([[1, 2, 3, 4]], [[0.9, 0.9, 0.9, 0.9]])
    look.step(torch.full((1, 4), MASK), logits, 8)
    assert torch.equal(look.reference(10, 12), mixture.log_probs(logits, MASK)[:, 2:4])
    assert look.reference(6, 8) is None and look.reference(11, 13) is None


def test_the_stop_is_within_the_engine_only_above_its_threshold_and_greedy():
    """The default stop (per position, gate 0.999; kl_gated alike) under threshold 0.9 can only commit
    what the threshold commits; a gate at or below the threshold, sampling, stable_slack or the paper's
    ungated rule can commit more, so the KL is needed there. Under factor f the bar is 1 - f / (block_length + 1)."""
    default = LRDConfig(policy="threshold", threshold=0.9)
    assert rules.stop_within_engine(default, 32)
    assert not rules.stop_within_engine(default.replace(early_stop_confidence=0.9), 32)
    assert not rules.stop_within_engine(default.replace(temperature=1.0), 32)
    assert not rules.stop_within_engine(default.replace(stable_slack=2.0), 32)
    assert not rules.stop_within_engine(default.replace(early_stop_rule="paper"), 32)
    assert rules.stop_within_engine(default.replace(early_stop_rule="kl_gated"), 32)  # gated as well
    assert not rules.stop_within_engine(default.replace(policy="lowest_entropy"), 32)
    factor = default.replace(policy="factor", factor=1.0)
    assert rules.stop_within_engine(factor, 32)  # bar 1 - 1/33 = 0.970
    assert not rules.stop_within_engine(factor, 999)  # bar 0.999: no room for rounding
    assert not rules.stop_within_engine(factor.replace(factor=0.01), 32)  # bar 0.9997 > the gate
    assert rules.stop_within_engine(factor.replace(factor=40.0, early_stop_confidence=0.5), 32)  # bar < 0: all


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    n=st.integers(1, 12),
    f=st.floats(0.05, 6.0),
    spread=st.floats(0.0, 0.2),
)
def test_under_the_factor_rule_every_position_at_its_bar_commits(seed, n, f, spread):
    """What `stop_within_engine` relies on: with N open positions the factor rule commits every
    position whose confidence is >= 1 - f / (N + 1), and with it every more confident one."""
    g = torch.Generator().manual_seed(seed)
    bar = 1.0 - f / (n + 1)
    confidence = (bar + spread * (torch.rand(1, n, generator=g) - 0.5)).clamp(0.0, 1.0)
    candidates = torch.rand(1, n, generator=g) < 0.8
    committed = policies.factor(confidence, candidates, f)
    above = candidates & (confidence >= bar + rules.ROUNDING)
    assert not (above & ~committed).any()


def test_a_block_window_under_the_default_keeps_no_prediction_for_a_kl():
    """Dual cache / SGLang shape (the window is the block): the default under threshold 0.9 keeps no
    previous prediction; with later positions in the window (the prefix cache's sequence stop) it does."""
    sampler = LRDSampler(LRDConfig(policy="threshold", threshold=0.9), torch.randn(8, 4), 7)
    for width, kept in ((3, False), (5, True)):
        state = sampler.init_block(torch.full((1, width), 7), 3)
        sampler.step(state, torch.randn(1, width, 8))
        assert (state.prev_logp is not None) == kept


def test_the_later_gate_is_the_engines_bar_under_a_parallel_rule():
    """After the current block the stop's gate is the lower of early_stop_confidence and the
    confidence the engine's rule commits on sight; without a parallel rule, or with
    ``later_gate="early_stop"``, it is early_stop_confidence."""
    threshold = LRDConfig(policy="threshold", threshold=0.9)
    assert rules.later_gate(threshold, 32) == 0.9
    assert rules.later_gate(threshold.replace(threshold=0.9999), 32) == 0.999
    assert rules.later_gate(threshold.replace(policy="factor", factor=1.0), 32) == pytest.approx(1 - 1 / 33)
    assert rules.later_gate(threshold.replace(later_gate="early_stop"), 32) == 0.999
    assert rules.later_gate(LRDConfig(), 32) == 0.999  # the paper's one-token-per-step policy
    with pytest.raises(ValueError, match=r"later_gate must be one of \['auto', 'early_stop'\]"):
        LRDConfig(later_gate="engine")


@pytest.mark.parametrize("later_gate", ["auto", "early_stop"])
def test_a_settled_later_position_commits_at_the_engines_bar(later_gate):
    """A window past the block (the prefix cache's sequence stop): a stable later position at 0.95
    commits under threshold 0.9 with the ``auto`` gate, not with 0.999; one at 0.85 does not."""
    cfg = LRDConfig(policy="threshold", threshold=0.9, later_gate=later_gate, later_commit="every_step")
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 5), MASK), 3)
    logits = peaked([[1, 2, 3, 4, 5]], [[0.95, 0.85, 0.8, 0.95, 0.85]])
    assert sampler.step(state, logits).tolist() == [[True, False, False, False, False]]  # no KL yet
    commit = sampler.step(state, logits)  # the block: the engine's forced best; after it: the stop
    assert commit.tolist() == [[False, True, False, later_gate == "auto", False]]


@pytest.mark.parametrize("later_gate", ["auto", "early_stop"])
def test_the_lookahead_commits_a_settled_position_at_the_engines_bar(later_gate):
    cfg = LRDConfig(policy="factor", factor=1.0, later_gate=later_gate)  # bar 1 - 1/33 = 0.970 for block 32
    look = Lookahead(LRDSampler(cfg, torch.randn(VOCAB, 4), MASK), 32)
    logits = peaked([[1, 2, 3]], [[0.98, 0.96, 0.9995]])
    look.step(torch.full((1, 3), MASK), logits, 40)
    commit, _ = look.step(torch.full((1, 3), MASK), logits, 40)
    assert commit.tolist() == [[later_gate == "auto", False, True]]


@pytest.mark.parametrize("later_commit", ["block_end", "every_step"])
def test_later_positions_wait_for_the_forward_that_finishes_the_block(later_commit):
    """``later_commit="block_end"``: a settled later position commits only on the forward that
    finishes the block, so it never changes the context of the block still being decoded;
    ``every_step`` commits it on the first step that finds it settled."""
    cfg = LRDConfig(policy="threshold", threshold=0.9, later_commit=later_commit)
    sampler = LRDSampler(cfg, torch.randn(VOCAB, 4), MASK)
    state = sampler.init_block(torch.full((1, 5), MASK), 3)
    logits = peaked([[1, 2, 3, 4, 5]], [[0.95, 0.5, 0.4, 0.99, 0.3]])
    assert sampler.step(state, logits).tolist() == [[True, False, False, False, False]]  # no KL yet
    second = sampler.step(state, logits)  # the engine's forced best; the block keeps one open position
    assert second.tolist() == [[False, True, False, later_commit == "every_step", False]]
    third = sampler.step(state, logits)  # the forced best finishes the block
    assert third.tolist() == [[False, False, True, later_commit == "block_end", False]]
    assert not state.finished_sequence.item()  # position 4 (0.3) is still open


def test_later_commit_names_its_choices():
    with pytest.raises(ValueError, match=r"later_commit must be one of \['auto', 'block_end', 'every_step'\]"):
        LRDConfig(later_commit="never")


def test_later_commit_auto_waits_for_the_block_end_only_under_a_parallel_rule():
    """``auto``: the composed mode keeps the block's context (``block_end``); the paper's
    one-token-per-step policies commit a settled tail at once (``every_step``)."""
    for policy in ("threshold", "factor"):
        assert LRDConfig(policy=policy).later_commits_at == "block_end"
    for policy in ("lowest_entropy", "low_confidence"):
        assert LRDConfig(policy=policy).later_commits_at == "every_step"
    assert LRDConfig(later_commit="block_end").later_commits_at == "block_end"
