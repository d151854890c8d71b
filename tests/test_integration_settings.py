"""The pieces of the Fast-dLLM integration that need no checkout: the sampler's ``select`` hook,
``lrd_*`` settings as callers pass them, the settings an evaluation harness puts in force, and
layout detection."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrd_plugin import LRDConfig, LRDSampler, policies
from lrd_plugin.integrations.fast_dllm import detect_layout
from lrd_plugin.integrations.fast_dllm.evaluate import harness_switch
from lrd_plugin.integrations.fast_dllm.settings import active, harness_settings, lrd_config, with_active

VOCAB, MASK = 12, 11


def run_block(config: LRDConfig, logits_stream: list[torch.Tensor], select=None) -> tuple[torch.Tensor, int]:
    embedding = torch.randn(VOCAB, 8, generator=torch.Generator().manual_seed(0))
    sampler = LRDSampler(config, embedding, MASK)
    state = sampler.init_block(torch.full((2, 6), MASK), 6)
    forwards = 0
    while not state.done:
        sampler.step(state, logits_stream[forwards], select=select)
        forwards += 1
    return state.tokens, forwards


def threshold_select(threshold: float):
    """The threshold rule written as an engine's own function would be: it gets logits, not the
    sampler's probabilities, and must never see the mask token win."""

    def select(logits, candidates, tokens, decode_step):
        assert (logits[..., MASK] == -torch.inf).all()
        probs = logits.float().softmax(-1)
        confidence, proposals = probs.max(-1)
        return proposals, policies.threshold(confidence, candidates, threshold)

    return select


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), refinement=st.booleans(), mixing=st.booleans(), early_stop=st.booleans())
def test_select_hook_with_the_same_rule_changes_nothing(seed, refinement, mixing, early_stop) -> None:
    """An engine commit function that implements the config's own policy gives the same decoding."""
    generator = torch.Generator().manual_seed(seed)
    stream = [torch.randn(2, 6, VOCAB, generator=generator) * 4 for _ in range(40)]
    config = LRDConfig(
        policy="threshold", threshold=0.6, refinement=refinement, mixing=mixing, early_stop=early_stop,
        max_refine_steps=3,
    )  # fmt: skip
    tokens, forwards = run_block(config, stream)
    hooked_tokens, hooked_forwards = run_block(config, stream, threshold_select(0.6))
    assert torch.equal(tokens, hooked_tokens) and forwards == hooked_forwards


def test_select_hook_proposals_are_what_is_committed() -> None:
    """The engine's proposals (not the sampler's argmax) are written for the positions it commits."""
    stream = [torch.zeros(2, 6, VOCAB) for _ in range(10)]

    def select(logits, candidates, tokens, decode_step):
        proposals = torch.full_like(tokens, 5)
        first = torch.zeros_like(candidates)
        first[torch.arange(2), candidates.float().argmax(-1)] = True
        return proposals, first & candidates

    tokens, forwards = run_block(LRDConfig.base(policy="threshold"), stream, select)
    assert (tokens == 5).all() and forwards == 6


def test_lrd_settings_are_coerced_and_checked() -> None:
    config = lrd_config({"r_f": "0.2", "early_stop": "False", "max_refine_steps": "5", "tau_decode": 1})
    assert (config.r_f, config.early_stop, config.max_refine_steps, config.tau_decode) == (0.2, False, 5, 1.0)
    with pytest.raises(ValueError, match=r"unknown LRD setting lrd_rf.*lrd_r_f"):
        lrd_config({"rf": 0.2})
    with pytest.raises(ValueError, match="lrd_threshold is set by Fast-dLLM's own arguments"):
        lrd_config({"threshold": 0.5})
    with pytest.raises(ValueError, match="r_f"):
        lrd_config({"r_f": "2"})
    with pytest.raises(TypeError, match="early_stop"):
        lrd_config({"early_stop": "maybe"})
    assert lrd_config({}, {"r_f": 0.1}).r_f == 0.1
    with pytest.raises(TypeError, match="lrd_config must be an LRDConfig"):
        lrd_config({}, 3)  # type: ignore[arg-type]


def test_a_block_only_loop_defaults_the_early_stop_to_the_block_but_keeps_a_named_scope() -> None:
    """The dual cache predicts only the current block: the default whole-answer stop becomes a block
    stop there, while a scope the caller names is kept (the loop then refuses 'sequence')."""
    assert lrd_config({}).early_stop_scope == "sequence"
    assert lrd_config({}, whole_answer=False).early_stop_scope == "block"
    assert lrd_config({"r_f": "0.2"}, {"top_p": 0.5}, whole_answer=False).early_stop_scope == "block"
    assert lrd_config({"early_stop_scope": "sequence"}, whole_answer=False).early_stop_scope == "sequence"
    assert lrd_config({}, {"early_stop_scope": "sequence"}, whole_answer=False).early_stop_scope == "sequence"
    assert lrd_config({}, LRDConfig(), whole_answer=False).early_stop_scope == "sequence"


def test_harness_settings_split_and_fail_early() -> None:
    lrd, rest = harness_settings({"sampler": "lrd", "lrd_r_f": 0.2, "steps": 8})
    assert lrd == {"sampler": "lrd", "lrd_r_f": 0.2} and rest == {"steps": 8}
    assert harness_settings({"steps": 8}) == ({"sampler": None}, {"steps": 8})
    with pytest.raises(ValueError, match="sampler must be one of"):
        harness_settings({"sampler": "LRD"})
    with pytest.raises(ValueError, match="without sampler=lrd"):
        harness_settings({"lrd_r_f": 0.2})
    with pytest.raises(ValueError, match="unknown LRD setting"):
        harness_settings({"sampler": "lrd", "lrd_tau": 0.2})


def test_active_settings_reach_calls_and_explicit_arguments_win() -> None:
    assert with_active({"a": 1}) == {"a": 1}
    with active({"sampler": "lrd", "lrd_r_f": 0.2}):
        assert with_active({"lrd_r_f": 0.1, "steps": 4}) == {"sampler": "lrd", "lrd_r_f": 0.1, "steps": 4}
    assert with_active({}) == {}


def test_harness_switch_carries_model_args_into_generate_until() -> None:
    class Harness:  # the shape of Fast-dLLM's harnesses: **kwargs swallowed, generate_until calls out
        def __init__(self, steps: int = 1, **kwargs: object) -> None:
            self.steps, self.swallowed = steps, kwargs

        def generate_until(self, requests: list[str]) -> list[dict]:
            return [with_active({}) for _ in requests]

    harness = harness_switch(Harness)(steps=3, sampler="lrd", lrd_r_f=0.2)
    assert harness.steps == 3 and harness.swallowed == {}
    assert harness.generate_until(["q"]) == [{"sampler": "lrd", "lrd_r_f": 0.2}]
    assert with_active({}) == {}
    assert harness_switch(Harness) is Harness  # idempotent


def test_layout_detection_names_what_it_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAST_DLLM_ROOT", raising=False)
    with pytest.raises(FileNotFoundError, match="FAST_DLLM_ROOT"):
        detect_layout()
    with pytest.raises(ValueError, match=r"v1/llada/generate\.py"):
        detect_layout(tmp_path)
    for prefix, name in (("v1/", "v1"), ("", "root")):
        root = tmp_path / name
        (root / f"{prefix}llada").mkdir(parents=True)
        (root / f"{prefix}llada/generate.py").write_text("")
        (root / f"{prefix}dream/model").mkdir(parents=True)
        (root / f"{prefix}dream/model/generation_utils_block.py").write_text("")
        layout = detect_layout(root)
        assert layout.name == name and layout.legacy == (name == "root")
