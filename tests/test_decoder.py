"""Behaviour of the decode loop and the statistics it reports, on real tiny models."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from lrd_plugin import HFDenoiser, LRDConfig, LRDSampler, Phase, generate
from tests.conftest import MASK, tiny_llada
from tests.fields import RandomField

FLAT = 1.0  # tiny_llada sharpness that leaves predictions close to uniform


def _prompt(batch, length, seed=0):
    return torch.randint(0, MASK, (batch, length), generator=torch.Generator().manual_seed(seed))


def _adapter(seed=0, sharpness=60.0):
    return HFDenoiser(tiny_llada(seed=seed, sharpness=sharpness), MASK)


# --- Phase 1 -------------------------------------------------------------------------------------


def test_phase_one_refines_for_k_forwards_and_commits_nothing():
    """Drive the sampler by hand over a real model: tau_refine=0 never converges, so the first k
    forwards only refine (mixture inputs, no commit); forward k + 1 ends Phase 1 and commits.
    r_f = 1 keeps successive predictions far apart (KL of order 1), so the rounding of a near-zero
    KL (see test_kl_trace_values_are_never_negative) cannot end Phase 1 here."""
    k, block = 4, 8
    adapter = _adapter(seed=1)
    table = adapter.embedding_table().detach()
    cfg = LRDConfig(tau_refine=0.0, max_refine_steps=k, early_stop=False, r_f=1.0)
    sampler = LRDSampler(cfg, table, MASK)
    prompt = _prompt(2, 5)
    start, end = 5, 5 + block
    x = torch.cat([prompt, torch.full((2, block), MASK)], dim=1)
    state = sampler.init_block(x[:, start:end], block)
    assert (state.phase == Phase.REFINE).all()

    def forward():
        inputs = F.embedding(x, table)
        inputs[:, start:end] = sampler.block_inputs(state, inputs[:, start:end])
        with torch.no_grad():
            logits, _ = adapter.forward(inputs)
        return inputs[:, start:end], logits[:, start:end]

    bare_mask = table[MASK]
    for i in range(k):
        block_inputs, logits = forward()
        # the first forward sees bare masks, later ones the mixtures of the previous prediction
        is_bare_mask = (block_inputs == bare_mask).all(dim=-1)
        assert bool(is_bare_mask.all()) if i == 0 else not is_bare_mask.any()
        commit = sampler.step(state, logits)
        assert not commit.any(), f"Phase 1 committed at refine step {i + 1}"
        assert (state.tokens == MASK).all()
        assert (state.phase == Phase.REFINE).all()
        assert state.refine_steps.tolist() == [i + 1, i + 1] and state.decode_steps.tolist() == [0, 0]
        assert state.mixture is not None and state.mixture.shape == (2, block, table.shape[1])
    x[:, start:end] = state.tokens

    _, logits = forward()
    commit = sampler.step(state, logits)
    assert commit.sum(dim=-1).tolist() == [1, 1], "the forward that ends Phase 1 commits (lowest entropy: one token)"
    assert (state.phase == Phase.DECODE).all()
    assert state.refine_steps.tolist() == [k, k] and state.decode_steps.tolist() == [1, 1]
    assert torch.equal(state.forwards, state.refine_steps + state.decode_steps)


@pytest.mark.parametrize(("seed", "sharpness"), [(0, 60.0), (1, FLAT), (2, FLAT)])
@pytest.mark.parametrize("k", [1, 3])
def test_tau_refine_zero_spends_exactly_max_refine_steps_in_every_block(seed, sharpness, k):
    """KL >= 0, so tau_refine=0 can never end Phase 1 early. Fails for near-uniform models while
    `mixture.kl_divergence` can round below zero (see test_kl_trace_values_are_never_negative)."""
    out = generate(
        _adapter(seed, sharpness),
        _prompt(2, 5, seed),
        gen_length=16,
        block_length=8,
        config=LRDConfig(tau_refine=0.0, max_refine_steps=k, early_stop=False),
    )
    assert (out.refine_steps == k).all(), out.refine_steps
    assert (out.decode_steps == 8).all()  # lowest entropy commits one token per Phase-2 forward
    assert out.nfe == 2 * (k + 8) and out.nfe_per_sequence.tolist() == [2 * (k + 8)] * 2
    assert not (out.generated == MASK).any()


# --- early stop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mixing", [True, False])
@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_huge_tau_decode_finishes_each_block_at_the_first_kl(mixing, cache):
    """The first forward of a block has no previous prediction (KL = inf) and commits by the
    policy; the second has a finite KL < tau_decode and commits the rest of the block."""
    cfg = LRDConfig.paper(refinement=False, mixing=mixing, tau_decode=1e9)
    out = generate(_adapter(), _prompt(2, 5), gen_length=24, block_length=8, config=cfg, cache=cache)
    assert out.early_stopped.all()
    assert (out.refine_steps == 0).all() and (out.decode_steps == 2).all()
    assert out.nfe == 3 * 2 and out.nfe_per_sequence.tolist() == [6, 6]
    assert not out.stopped_sequence.any()
    assert not (out.generated == MASK).any()


def test_huge_taus_with_refinement_finish_each_block_on_its_first_decode_forward():
    """One refine forward (KL = inf cannot converge), then the forward that ends Phase 1 also
    early-stops: decode_steps == 1 per block."""
    cfg = LRDConfig.paper(tau_refine=1e9, tau_decode=1e9)
    out = generate(_adapter(), _prompt(2, 5), gen_length=24, block_length=8, config=cfg)
    assert out.early_stopped.all()
    assert (out.refine_steps == 1).all() and (out.decode_steps == 1).all()
    assert out.nfe == 6 and out.nfe_per_sequence.tolist() == [6, 6]


def test_without_early_stop_nothing_is_early_stopped():
    cfg = LRDConfig(refinement=False, early_stop=False, tau_decode=1e9)
    out = generate(_adapter(), _prompt(2, 5), gen_length=24, block_length=8, config=cfg)
    assert not out.early_stopped.any() and not out.stopped_sequence.any()
    assert (out.decode_steps == 8).all() and out.nfe == 24


def test_tiny_blocks_do_not_count_as_early_stopped():
    """A block whose last open token is committed by the policy itself was not early-stopped."""
    cfg = LRDConfig(refinement=False, tau_decode=1e9)
    out = generate(_adapter(), _prompt(1, 5), gen_length=4, block_length=1, config=cfg)
    assert not out.early_stopped.any() and (out.decode_steps == 1).all() and out.nfe == 4


@pytest.mark.parametrize("refinement", [False, True])
@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_sequence_scope_finishes_the_whole_answer_in_the_first_block(refinement, cache):
    cfg = LRDConfig.paper(refinement=refinement, tau_refine=1e9, tau_decode=1e9, early_stop_scope="sequence")
    out = generate(_adapter(), _prompt(2, 5), gen_length=16, block_length=4, config=cfg, cache=cache, record_kl=True)
    first_block = out.refine_steps[:, 0] + out.decode_steps[:, 0]
    assert out.stopped_sequence.all()
    assert first_block.tolist() == [2, 2]
    assert (out.refine_steps[:, 1:] == 0).all() and (out.decode_steps[:, 1:] == 0).all()
    assert out.nfe == 2 and out.nfe_per_sequence.tolist() == [2, 2]
    assert [len(block) for block in out.kl_trace] == [2, 0, 0, 0]
    assert not (out.generated == MASK).any()
    # the block scope with the same thresholds pays for every block
    block_scope = generate(
        _adapter(),
        _prompt(2, 5),
        gen_length=16,
        block_length=4,
        config=cfg.replace(early_stop_scope="block"),
        cache=cache,
    )
    assert block_scope.nfe == 4 * 2 and not block_scope.stopped_sequence.any()


# --- KL trace ------------------------------------------------------------------------------------

KL_CONFIGS = [
    LRDConfig.paper(),
    LRDConfig.paper(max_refine_steps=2, tau_refine=0.0, tau_decode=0.0, policy="threshold"),
    LRDConfig.paper(refinement=False, tau_decode=1e-3, policy="factor"),
    LRDConfig.paper(early_stop_scope="sequence", tau_decode=1e-4),
]


@pytest.mark.parametrize("config", KL_CONFIGS)
def test_kl_trace_has_one_entry_per_forward_and_starts_each_block_at_inf(config):
    out = generate(
        _adapter(seed=3), _prompt(3, 5, seed=3), gen_length=16, block_length=8, config=config, record_kl=True
    )
    forwards = out.refine_steps + out.decode_steps  # [B, blocks]
    assert len(out.kl_trace) == 2
    assert sum(len(block) for block in out.kl_trace) == out.nfe
    for b, block in enumerate(out.kl_trace):
        assert len(block) == int(forwards[:, b].max())
        if not block:
            continue
        trace = torch.stack(block, dim=1)  # [B, steps]
        assert trace.shape == (3, len(block))
        # NaN marks a sequence that had no work at that step; a sequence works for a prefix of steps
        ran = ~trace.isnan()
        assert ran.sum(dim=1).tolist() == forwards[:, b].tolist()
        assert torch.equal(ran, torch.arange(len(block)) < forwards[:, b, None])
        first = trace[forwards[:, b] > 0, 0]
        assert torch.isinf(first).all() and (first > 0).all(), "no previous prediction at the first forward"
        later = trace[:, 1:][ran[:, 1:]]
        assert torch.isfinite(later).all()
    assert torch.equal(out.nfe_per_sequence, forwards.sum(dim=1))


def test_kl_trace_values_are_never_negative():
    """Regression (mixture.kl_divergence): KL(p || q) is computed as sum p * (log p - log q) without a clamp,
    so for near-identical fp32 predictions it rounds to about -5e-8. That also makes tau_refine=0 /
    tau_decode=0 (allowed by LRDConfig) end Phase 1 or stop early."""
    negatives = []
    for seed in range(3):
        out = generate(
            _adapter(seed, FLAT),
            _prompt(2, 5, seed),
            gen_length=16,
            block_length=8,
            config=LRDConfig(tau_refine=0.0, tau_decode=0.0, max_refine_steps=3),
            record_kl=True,
        )
        values = torch.cat([torch.stack(block, dim=1).flatten() for block in out.kl_trace if block])
        negatives += values[values < 0].tolist()
    assert not negatives, f"negative KL values in the trace: {negatives[:5]}"


def test_kl_trace_of_the_base_policy_reports_the_kl_not_inf():
    """Regression (sampler.step, `needs_kl`): with refinement and early stop off the sampler skips the KL and
    records inf for every forward, so record_kl=True on the base policy reports 'no previous
    prediction' at steps that had one. It should record the KL (or at least NaN, 'not computed')."""
    out = generate(_adapter(), _prompt(2, 5), gen_length=16, block_length=8, config=LRDConfig.base(), record_kl=True)
    assert [len(block) for block in out.kl_trace] == [8, 8]
    for block in out.kl_trace:
        assert torch.isinf(block[0]).all()
        assert not torch.isinf(torch.stack(block[1:])).any(), "later forwards have a previous prediction"


def test_to_dict_is_json_and_maps_non_finite_kl_to_none():
    cfg = LRDConfig(policy="threshold", max_refine_steps=2, tau_decode=1e-3, refine_commit="sure")
    out = generate(_adapter(seed=3), _prompt(3, 5, seed=3), gen_length=16, block_length=8, config=cfg, record_kl=True)
    data = out.to_dict()
    text = json.dumps(data, allow_nan=False)  # strict JSON: no Infinity / NaN literals
    back = json.loads(text)
    assert back["nfe"] == out.nfe and back["generated"] == out.generated.tolist()
    assert back["refine_steps"] == out.refine_steps.tolist() and back["decode_steps"] == out.decode_steps.tolist()
    assert back["early_stopped_blocks"] == out.early_stopped.tolist()
    assert back["nfe_per_sequence"] == out.nfe_per_sequence.tolist()
    assert len(back["kl_trace"]) == len(out.kl_trace)
    saw_inf = saw_nan = saw_value = False
    for block_json, block in zip(back["kl_trace"], out.kl_trace, strict=True):
        assert len(block_json) == len(block)
        for step_json, step in zip(block_json, block, strict=True):
            for value_json, value in zip(step_json, step.tolist(), strict=True):
                if math.isfinite(value):
                    assert value_json == pytest.approx(value, rel=0, abs=0)
                    saw_value = True
                else:
                    assert value_json is None
                    saw_inf |= math.isinf(value)
                    saw_nan |= math.isnan(value)
    assert saw_inf and saw_value
    assert saw_nan, "the batch should contain a sequence that finished a block early (NaN entries)"
    plain = generate(_adapter(seed=3), _prompt(3, 5, seed=3), gen_length=16, block_length=8, config=cfg)
    assert plain.kl_trace is None and "kl_trace" not in plain.to_dict()
    assert "generated" not in plain.to_dict(with_tokens=False)
    json.dumps(plain.to_dict(), allow_nan=False)


# --- sampling --------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [LRDConfig(temperature=1.0), LRDConfig.base(temperature=1.0, policy="threshold")])
def test_temperature_sampling_is_reproducible_per_seed_and_varies_across_seeds(config):
    adapter = _adapter(seed=4, sharpness=FLAT)
    prompt = _prompt(2, 5, seed=4)

    def run(seed):
        return generate(
            adapter, prompt, gen_length=16, block_length=8, config=config, generator=torch.Generator().manual_seed(seed)
        )

    outputs = []
    for seed in range(4):
        first, again = run(seed), run(seed)
        assert torch.equal(first.sequences, again.sequences) and first.nfe == again.nfe
        assert torch.equal(first.nfe_per_sequence, again.nfe_per_sequence)
        assert not (first.generated == MASK).any()
        assert torch.equal(first.sequences[:, :5], prompt)
        outputs.append(first.generated)
    distinct = {tuple(o.flatten().tolist()) for o in outputs}
    assert len(distinct) > 1, "different generator seeds gave the same sample every time"


def test_greedy_decoding_ignores_the_generator():
    adapter = _adapter(seed=4, sharpness=FLAT)
    outs = [
        generate(
            adapter, _prompt(2, 5), gen_length=16, block_length=8, generator=torch.Generator().manual_seed(s)
        ).sequences
        for s in range(3)
    ]
    assert all(torch.equal(outs[0], o) for o in outs[1:])


def test_the_mask_token_is_never_sampled_even_when_it_dominates():
    """A model that puts almost all its mass on the mask token still never emits it."""
    field = RandomField(MASK + 1, 8, MASK, seed=0, sharpness=1.0)
    with torch.no_grad():
        field.head[:, MASK] += 50.0
    for cfg in (LRDConfig(temperature=2.0), LRDConfig(), LRDConfig.base(temperature=1.0)):
        out = generate(
            field, _prompt(2, 3), gen_length=8, block_length=4, config=cfg, generator=torch.Generator().manual_seed(0)
        )
        assert not (out.generated == MASK).any()


# --- left padding ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        LRDConfig(),
        LRDConfig.base(policy="threshold"),
        LRDConfig(policy="factor", early_stop_scope="sequence", tau_decode=1e-3),
    ],
    ids=["paper", "threshold-base", "factor-sequence"],
)
@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_left_padded_rows_decode_as_they_would_alone(config, cache):
    adapter = _adapter(seed=1, sharpness=20.0)
    rows = [_prompt(1, n, seed=10 + n) for n in (3, 6, 5)]
    width = max(r.shape[1] for r in rows)
    prompt = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        prompt[i, width - row.shape[1] :] = row[0]
        mask[i, width - row.shape[1] :] = 1
    kwargs = {"gen_length": 16, "block_length": 8, "config": config, "cache": cache}
    batch = generate(adapter, prompt, attention_mask=mask, **kwargs)
    per_row_nfe = []
    for i, row in enumerate(rows):
        alone = generate(adapter, row, **kwargs)
        assert torch.equal(batch.generated[i], alone.generated[0]), f"row {i} differs from its solo decode"
        assert int(batch.nfe_per_sequence[i]) == alone.nfe
        assert torch.equal(batch.refine_steps[i], alone.refine_steps[0])
        assert torch.equal(batch.decode_steps[i], alone.decode_steps[0])
        assert torch.equal(batch.early_stopped[i], alone.early_stopped[0])
        per_row_nfe.append(alone.nfe)
    assert batch.nfe == max(per_row_nfe)
    assert torch.equal(batch.sequences[:, :width], prompt)
    # the guard: this model really attends to padding when it is not masked out
    with torch.no_grad():
        unmasked = adapter.model(input_ids=prompt).logits[0, -1]
        masked = adapter.model(input_ids=prompt, attention_mask=mask).logits[0, -1]
    assert not torch.allclose(unmasked, masked)


# --- NFE against the base policy and the bound -------------------------------------------------------


@pytest.mark.parametrize(("seed", "sharpness"), [(0, 60.0), (1, 60.0), (2, 8.0), (3, FLAT)])
@pytest.mark.parametrize("cache", ["none", "prefix"])
def test_paper_config_saves_forwards_over_the_base_policy_within_the_bound(seed, sharpness, cache):
    adapter = _adapter(seed, sharpness)
    prompt = _prompt(2, 6, seed)
    gen_length, block_length = 32, 8
    paper_cfg = LRDConfig.paper(policy="lowest_entropy")
    paper = generate(adapter, prompt, gen_length=gen_length, block_length=block_length, config=paper_cfg, cache=cache)
    base = generate(
        adapter, prompt, gen_length=gen_length, block_length=block_length, config=LRDConfig.base(), cache=cache
    )
    assert base.nfe == gen_length  # one lowest-entropy token per forward
    sampler = LRDSampler(paper_cfg, adapter.embedding_table(), MASK)
    bound = (gen_length // block_length) * sampler.max_forwards_per_block(block_length)
    assert bound == 4 * (20 + 8)
    assert int(paper.nfe_per_sequence.max()) <= paper.nfe <= bound
    assert paper.early_stopped.any(), "the paper defaults should early-stop on this model"
    assert paper.nfe < base.nfe
    assert (paper.nfe_per_sequence < base.nfe_per_sequence).all()
    assert not (paper.generated == MASK).any()


@pytest.mark.parametrize("policy", ["lowest_entropy", "low_confidence", "threshold", "factor"])
def test_nfe_never_exceeds_the_bound_on_a_slowly_converging_field(policy):
    """Thresholds that never fire: every block pays its full refinement budget, and no more."""
    field = RandomField(24, 8, 23, seed=1, sharpness=4.0)
    cfg = LRDConfig(policy=policy, tau_refine=0.0, tau_decode=0.0, max_refine_steps=3, early_stop=False)
    out = generate(
        field,
        torch.randint(0, 23, (2, 4), generator=torch.Generator().manual_seed(1)),
        gen_length=12,
        block_length=4,
        config=cfg,
    )
    bound = 3 * LRDSampler(cfg, field.embedding_table(), 23).max_forwards_per_block(4)
    assert int(out.nfe_per_sequence.max()) <= out.nfe <= bound
    assert torch.equal(out.nfe_per_sequence, (out.refine_steps + out.decode_steps).sum(dim=1))
    assert not (out.generated == 23).any()
