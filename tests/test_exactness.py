"""With refinement, mixing and early stop off, LRD is its base policy: token for token, NFE for NFE.

The oracle (tests/reference_policies.py) is a deliberately plain, independently written
implementation of each base policy (LLaDA's fixed low-confidence schedule, Fast-dLLM's threshold
and factor rules, the LRD paper's lowest-entropy baseline), with and without a prefix cache.
"""

import pytest
import torch

from lrd_plugin import HFDenoiser, LRDConfig, generate
from tests.conftest import MASK, tiny_llada
from tests.reference_policies import reference_generate

POLICIES = [
    ("low_confidence", {"steps_per_block": 8}),
    ("low_confidence", {"steps_per_block": 3}),
    ("low_confidence", {}),
    ("threshold", {"threshold": 0.9}),
    ("threshold", {"threshold": 0.5}),
    ("factor", {"factor": 1.0}),
    ("factor", {"factor": 2.5}),
    ("lowest_entropy", {}),
]


@pytest.mark.parametrize(("policy", "knobs"), POLICIES)
@pytest.mark.parametrize("cache", ["none", "prefix"])
@pytest.mark.parametrize("shift", [0, 1])
def test_base_policies_are_reproduced_exactly(policy, knobs, cache, shift):
    model = tiny_llada(seed=len(policy) + shift)
    adapter = HFDenoiser(model, MASK, shift=shift)
    config = LRDConfig.base(policy=policy, **knobs)
    for seed in range(3):
        prompt = torch.randint(0, MASK, (1, 5 + seed), generator=torch.Generator().manual_seed(seed))
        out = generate(adapter, prompt, gen_length=16, block_length=8, config=config, cache=cache)
        want, want_nfe = reference_generate(
            model,
            prompt,
            gen_length=16,
            block_length=8,
            mask_id=MASK,
            policy=policy,
            steps_per_block=knobs.get("steps_per_block"),
            threshold=knobs.get("threshold", 0.9),
            factor=knobs.get("factor", 1.0),
            use_prefix_cache=cache == "prefix",
            shift=bool(shift),
        )
        assert torch.equal(out.sequences, want), (seed, out.sequences, want)
        assert out.nfe == want_nfe


def test_parallel_policies_actually_commit_several_tokens_per_step():
    """Guards the exactness test against a degenerate model where every policy is one token per step."""
    adapter = HFDenoiser(tiny_llada(seed=6), MASK)
    prompt = torch.randint(0, MASK, (1, 6), generator=torch.Generator().manual_seed(0))
    nfe = {
        p: generate(adapter, prompt, gen_length=16, block_length=8, config=LRDConfig.base(policy=p)).nfe
        for p in ("lowest_entropy", "threshold", "factor")
    }
    assert nfe["lowest_entropy"] == 16 and nfe["threshold"] < 16 and nfe["factor"] < 16


def test_vanishing_r_f_gives_the_base_policy_even_with_mixing_on():
    model = tiny_llada(seed=2)
    adapter = HFDenoiser(model, MASK)
    prompt = torch.randint(0, MASK, (2, 6), generator=torch.Generator().manual_seed(1))
    base = generate(adapter, prompt, gen_length=16, block_length=8, config=LRDConfig.base(policy="threshold"))
    mixed = generate(
        adapter,
        prompt,
        gen_length=16,
        block_length=8,
        config=LRDConfig.base(policy="threshold", mixing=True, r_f=1e-12),
    )
    assert torch.equal(base.sequences, mixed.sequences) and base.nfe == mixed.nfe
