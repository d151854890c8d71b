"""`sampler="lrd"` inside upstream Fast-dLLM's LLaDA generation, run against the real checkout.

Tiny random models never learn that the mask token is not an answer, so upstream would happily
commit it; a forward hook on the output head pushes its logit to -1e4, as training does for a real
model, so that both samplers see a model that never predicts it (upstream's commits are then the
same with or without the mask column). The embedded default is a trained model and needs no hook.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from integration_tests.upstream_models import LLADA_MASK, tiny_llada
from lrd_plugin.integrations.fast_dllm import llada
from lrd_plugin.integrations.fast_dllm.layout import Layout, flat_imports
from lrd_plugin.models import CharTokenizer, LLaDAModel
from lrd_plugin.tasks import generate_examples

MASK = LLADA_MASK
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "lrd_plugin" / "default_model"
OFF = {"lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False}


class Upstream:
    """Upstream's generate module (switched and original functions) and its model classes."""

    def __init__(self, layout: Layout) -> None:
        with flat_imports(layout.llada_dir):
            self.module: ModuleType = importlib.import_module("generate")
            self.modeling = importlib.import_module("model.modeling_llada")
            self.configuration = importlib.import_module("model.configuration_llada")
        self.original = {name: getattr(self.module, name) for name in llada.FUNCTIONS}
        llada.install(self.module)
        self.layout = layout

    def switched(self, name: str) -> Any:
        return getattr(self.module, name)

    def tiny_model(self, seed: int = 0) -> Any:
        return tiny_llada(self.modeling, self.configuration, seed)

    def load_default(self) -> Any:
        config = self.configuration.LLaDAConfig.from_pretrained(DEFAULT_MODEL)
        return self.modeling.LLaDAModelLM.from_pretrained(DEFAULT_MODEL, config=config).eval()


@pytest.fixture(scope="module")
def upstream(layout: Layout) -> Upstream:
    return Upstream(layout)


def decoding_settings(layout: Layout) -> list[dict[str, Any]]:
    """Fixed steps (one and two tokens per step), threshold, and factor where the commit has it."""
    settings: list[dict[str, Any]] = [{"steps": 32}, {"steps": 16}, {"steps": 32, "threshold": 0.3}]
    if not layout.legacy:
        settings.append({"steps": 32, "factor": 1.0})
    return settings


def batch(layout: Layout) -> int:
    return 1 if layout.legacy else 2  # 24cc59e's loops allocate a batch of one


@pytest.mark.parametrize("function", list(llada.FUNCTIONS))
def test_features_off_reproduces_upstream(upstream: Upstream, function: str) -> None:
    model = upstream.tiny_model()
    prompt = torch.randint(0, 140, (batch(upstream.layout), 7), generator=torch.Generator().manual_seed(1))
    for setting in decoding_settings(upstream.layout):
        args = {"gen_length": 32, "block_length": 8, "mask_id": MASK, **setting}
        expected, expected_nfe = upstream.original[function](model, prompt, **args)
        plain, plain_nfe = upstream.switched(function)(model, prompt, **args)
        ours, nfe = upstream.switched(function)(model, prompt, sampler="lrd", **OFF, **args)
        assert torch.equal(plain, expected) and plain_nfe == expected_nfe, setting
        assert torch.equal(ours, expected), setting
        assert nfe == expected_nfe, setting


@pytest.mark.parametrize("function", list(llada.FUNCTIONS))
def test_lrd_decodes_every_position_with_valid_tokens(upstream: Upstream, function: str) -> None:
    model = upstream.tiny_model(seed=3)
    prompt = torch.randint(0, 140, (batch(upstream.layout), 5), generator=torch.Generator().manual_seed(2))
    for setting in decoding_settings(upstream.layout):
        args = {"gen_length": 32, "block_length": 8, "mask_id": MASK, **setting}
        x, nfe = upstream.switched(function)(model, prompt, sampler="lrd", **args)
        assert torch.equal(x[:, :5], prompt)
        assert not (x == MASK).any()
        assert ((x >= 0) & (x < 160)).all()
        # 4 blocks, each at most 20 refinement forwards + one commit per Phase-2 forward
        assert 4 <= nfe <= 4 * (20 + 8) + (4 if upstream.layout.legacy else 0)


def test_lrd_with_the_whole_sequence_scope(upstream: Upstream) -> None:
    model = upstream.tiny_model(seed=4)
    prompt = torch.randint(0, 140, (1, 6), generator=torch.Generator().manual_seed(3))
    for function in llada.FUNCTIONS:
        x, _ = upstream.switched(function)(
            model, prompt, steps=32, gen_length=32, block_length=8, mask_id=MASK, sampler="lrd",
            lrd_early_stop_scope="sequence",
        )  # fmt: skip
        assert not (x == MASK).any()


def test_the_dual_cache_stops_at_a_settled_tail(upstream: Upstream) -> None:
    """The dual cache predicts later blocks only at its block-start refreshes; the sequence stop
    compares those, so on the trained default a settled EOS tail ends decoding in fewer forwards
    than the block-scope stop, with the same answer."""
    model = upstream.load_default()
    tok = CharTokenizer.load(DEFAULT_MODEL)
    prompt = torch.tensor([tok.encode(generate_examples("list", "test", 1)[0].prompt)])
    args = {"steps": 128, "gen_length": 128, "block_length": 32, "mask_id": tok.mask_id, "threshold": 0.9}
    function = upstream.switched("generate_with_dual_cache")
    whole, whole_nfe = function(model, prompt, sampler="lrd", lrd_early_stop_scope="sequence", **args)
    block, block_nfe = function(model, prompt, sampler="lrd", lrd_early_stop_scope="block", **args)
    assert not (whole == tok.mask_id).any()
    answer, block_answer = whole[0, prompt.shape[1] :].tolist(), block[0, prompt.shape[1] :].tolist()
    assert tok.eos_id in answer
    assert answer[: answer.index(tok.eos_id)] == block_answer[: block_answer.index(tok.eos_id)]
    assert whole_nfe < block_nfe


def test_dual_cache_leaves_no_mask_where_upstream_does(upstream: Upstream) -> None:
    """Fast-dLLM#66: upstream's dual-cache loop runs steps_per_block - 1 cached forwards at most,
    so threshold decoding with few steps leaves masks; the LRD path loops until the block is done."""
    if upstream.layout.legacy:
        pytest.skip("24cc59e's dual-cache loop is a while loop: it does not have this bug")
    model = upstream.tiny_model(seed=5)
    prompt = torch.randint(0, 140, (1, 6), generator=torch.Generator().manual_seed(4))
    args = {"steps": 4, "gen_length": 32, "block_length": 8, "mask_id": MASK, "threshold": 0.99}
    upstream_x, _ = upstream.original["generate_with_dual_cache"](model, prompt, **args)
    assert (upstream_x == MASK).any(), "the upstream bug this test guards against did not show"
    ours, _ = upstream.switched("generate_with_dual_cache")(model, prompt, sampler="lrd", **OFF, **args)
    assert not (ours == MASK).any()


def test_mask_token_is_never_committed(upstream: Upstream) -> None:
    """With the mask made the favourite, upstream commits it — the block then never closes and its
    fixed-steps loop runs past its schedule (IndexError) — while LRD decodes real tokens."""
    model = upstream.tiny_model(seed=6)
    model.model.transformer.ff_out._forward_hooks.clear()
    with torch.no_grad():  # make the mask the favourite everywhere
        model.model.transformer.ff_out.weight[MASK] = model.model.transformer.ff_out.weight.mean(0) * 0 + 0.5
    prompt = torch.randint(0, 140, (1, 6), generator=torch.Generator().manual_seed(5))
    args = {"steps": 32, "gen_length": 32, "block_length": 8, "mask_id": MASK}
    try:
        upstream_x, _ = upstream.original["generate"](model, prompt, **args)
        upstream_broken = bool((upstream_x[:, 6:] == MASK).any())
    except IndexError:
        upstream_broken = True
    assert upstream_broken, "the upstream failure this test guards against did not show"
    ours, _ = upstream.switched("generate")(model, prompt, sampler="lrd", **OFF, **args)
    assert not (ours == MASK).any()


def test_bad_settings_are_named(upstream: Upstream) -> None:
    model = upstream.tiny_model()
    prompt = torch.randint(0, 140, (1, 4))
    generate = upstream.switched("generate_with_prefix_cache")
    args = {"steps": 8, "gen_length": 8, "block_length": 8, "mask_id": MASK}
    with pytest.raises(ValueError, match="sampler must be one of"):
        generate(model, prompt, sampler="lrdx", **args)
    with pytest.raises(ValueError, match="unknown LRD setting lrd_rf"):
        generate(model, prompt, sampler="lrd", lrd_rf=0.2, **args)
    with pytest.raises(ValueError, match="lrd_threshold is set by Fast-dLLM's own arguments"):
        generate(model, prompt, sampler="lrd", lrd_threshold=0.5, **args)
    with pytest.raises(ValueError, match="without sampler='lrd'"):
        generate(model, prompt, lrd_r_f=0.2, **args)
    with pytest.raises(ValueError, match="r_f"):
        generate(model, prompt, sampler="lrd", lrd_r_f=2.0, **args)
    with pytest.raises(ValueError, match="steps"):
        generate(model, prompt, sampler="lrd", **{**args, "steps": 3, "gen_length": 16})
    with pytest.raises(ValueError, match="remasking"):
        generate(model, prompt, sampler="lrd", remasking="lowest", **args)


@pytest.mark.skipif(not (DEFAULT_MODEL / "model.safetensors").exists(), reason="no embedded default checkpoint")
def test_embedded_default_loads_in_upstream_with_identical_logits(upstream: Upstream) -> None:
    theirs = upstream.load_default()
    ours = LLaDAModel.from_pretrained(DEFAULT_MODEL).eval()
    ids = torch.randint(4, ours.config.vocab_size, (2, 40), generator=torch.Generator().manual_seed(0))
    ids[:, 20:] = ours.config.mask_token_id
    with torch.no_grad():
        expected = theirs(ids).logits
        got = ours(input_ids=ids).logits
    assert torch.equal(got, expected)


@pytest.mark.skipif(not (DEFAULT_MODEL / "model.safetensors").exists(), reason="no embedded default checkpoint")
@pytest.mark.parametrize("function", list(llada.FUNCTIONS))
def test_features_off_reproduces_upstream_on_the_embedded_default(upstream: Upstream, function: str) -> None:
    from lrd_plugin.loading import load_model

    model = upstream.load_default()
    loaded = load_model("default")
    prompts = [
        "Ned has 2 jars, gets 7 more, triples them and gives away 3. How many now?",
        "sudoku .142/.4../.32./4.31",
    ]
    mask_id = loaded.tokenizer.mask_id
    for text in prompts[: batch(upstream.layout)]:
        prompt = torch.tensor([loaded.encode(text)])
        for setting in decoding_settings(upstream.layout):
            # the same schedules at gen_length 64: one token per step, two per step, threshold, factor
            args = {**setting, "steps": setting["steps"] * 2, "gen_length": 64, "block_length": 32, "mask_id": mask_id}
            expected, expected_nfe = upstream.original[function](model, prompt, **args)
            ours, nfe = upstream.switched(function)(model, prompt, sampler="lrd", **OFF, **args)
            assert torch.equal(ours, expected) and nfe == expected_nfe, (text, setting)
