"""LRD in Fast-dLLM's Dream block sampler, against the checkout's own code (tiny random models, CPU).

Run once per checkout: ``FAST_DLLM_ROOT=/path/to/Fast-dLLM pytest -q integration_tests/test_dream.py``.
Upstream's Dream code is imported under the flat name ``model`` and removed from ``sys.modules``
afterwards, so these tests can share a process with the LLaDA ones.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import types
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from lrd_plugin.integrations.fast_dllm import dream as lrd_dream
from lrd_plugin.integrations.fast_dllm.layout import Layout, flat_imports
from lrd_plugin.integrations.fast_dllm.settings import active

VOCAB, MASK, PAD = 200, 190, 191
GREEDY = {"temperature": 0.0, "top_p": None, "top_k": None}  # the model config's defaults would sample
BASE = {"lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False}
PAPER = {"lrd_early_stop_rule": "paper", "lrd_early_stop_scope": "block"}  # LRDConfig.paper()
ALGS = {"entropy": 0.9, "confidence_threshold": 0.5}  # alg -> threshold
CACHES = {"prefix": False, "dual": True}  # cache -> dual_cache
_MASK_INDEX = torch.tensor([MASK])


def _original(function: Callable[..., Any]) -> Callable[..., Any]:
    """Upstream's function, also when the checkout carries the patch's decorator lines."""
    return function.__wrapped__ if getattr(function, "__lrd_switch__", False) else function


@pytest.fixture(scope="module")
def dream(layout: Layout) -> SimpleNamespace:
    with flat_imports(layout.dream_dir):
        package = importlib.import_module("model")
        block = importlib.import_module("model.generation_utils_block")
    mixin = block.DreamGenerationMixin
    upstream = (_original(vars(mixin)["diffusion_generate"]), _original(vars(mixin)["_sample"]))
    lrd_dream.install(block)
    switched = (vars(mixin)["diffusion_generate"], vars(mixin)["_sample"])
    return SimpleNamespace(package=package, block=block, upstream=upstream, switched=switched)


class Tiny:
    """A random DreamModel that counts its forwards (NFE)."""

    def __init__(self, dream: SimpleNamespace, *, layers: int = 2, sharp: bool = True, seed: int = 0) -> None:
        torch.manual_seed(seed)
        config = dream.package.DreamConfig(
            vocab_size=VOCAB,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            mask_token_id=MASK,
            pad_token_id=PAD,
        )
        self.model = dream.package.DreamModel(config).eval()
        if sharp:
            # Random weights predict nearly uniformly, so the threshold rule would commit one token per
            # step; a scaled head is confident, as a trained model is, and commits several. (The flat
            # head stays in use too: its nearly equal entropies test how ties are broken.)
            with torch.no_grad():
                self.model.lm_head.weight.mul_(30.0)
        # Upstream never excludes the mask token, so on a random model it would commit it; a trained
        # Dream never ranks the mask first. Pinning its logit low gives the tiny model that property,
        # which keeps upstream's output comparable with LRD's (LRD removes the mask itself).
        self.model.lm_head.register_forward_hook(lambda module, args, out: out.index_fill(-1, _MASK_INDEX, -1e4))
        self.model.register_forward_pre_hook(self._count)
        self.forwards = 0
        self.dream = dream

    def _count(self, module: Any, args: Any) -> None:
        self.forwards += 1

    def run(self, prompt: torch.Tensor, *, upstream: bool = False, **kwargs: Any) -> tuple[torch.Tensor, int]:
        """``diffusion_generate`` bound as Fast-dLLM's ``eval.py`` binds it; returns (ids, forwards)."""
        generate, sample = self.dream.upstream if upstream else self.dream.switched
        self.model.diffusion_generate = types.MethodType(generate, self.model)
        self.model._sample = types.MethodType(sample, self.model)
        self.forwards = 0
        out = self.model.diffusion_generate(prompt, **kwargs)
        return out, self.forwards


def _prompt(batch: int = 1, length: int = 5, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 180, (batch, length), generator=generator)


def _settings(alg: str, cache: str, **extra: Any) -> dict[str, Any]:
    """3 blocks of 8 tokens, 4 steps per block."""
    settings = {"max_new_tokens": 24, "steps": 12, "block_length": 8, "alg": alg, "threshold": ALGS[alg]}
    return {**GREEDY, **settings, "dual_cache": CACHES[cache], **extra}


def _assert_complete(ids: torch.Tensor, prompt: torch.Tensor, new_tokens: int) -> None:
    assert ids.shape == (prompt.shape[0], prompt.shape[1] + new_tokens)
    assert torch.equal(ids[:, : prompt.shape[1]], prompt)
    answer = ids[:, prompt.shape[1] :]
    assert not (answer == MASK).any(), "a mask token was left or committed"
    assert bool(((answer >= 0) & (answer < VOCAB)).all())


# --- exactness with every LRD feature off ----------------------------------------------------------
@pytest.mark.parametrize("sharp", [True, False], ids=["confident", "flat"])
@pytest.mark.parametrize("alg", list(ALGS))
@pytest.mark.parametrize("cache", list(CACHES))
def test_base_path_reproduces_upstream(dream: SimpleNamespace, cache: str, alg: str, sharp: bool) -> None:
    tiny, prompt = Tiny(dream, sharp=sharp), _prompt()
    expected, expected_nfe = tiny.run(prompt, upstream=True, **_settings(alg, cache))
    got, nfe = tiny.run(prompt, sampler="lrd", **BASE, **_settings(alg, cache))
    assert torch.equal(got, expected)
    assert nfe == expected_nfe


@pytest.mark.parametrize("alg", list(ALGS))
@pytest.mark.parametrize("cache", list(CACHES))
def test_base_path_reproduces_upstream_in_bfloat16(dream: SimpleNamespace, cache: str, alg: str) -> None:
    """Dream runs in bf16, where confidences are stored and compared (and tie) in bf16."""
    tiny, prompt = Tiny(dream, sharp=False), _prompt(seed=3)
    tiny.model.to(torch.bfloat16)
    expected, expected_nfe = tiny.run(prompt, upstream=True, **_settings(alg, cache))
    got, nfe = tiny.run(prompt, sampler="lrd", **BASE, **_settings(alg, cache))
    assert torch.equal(got, expected)
    assert nfe == expected_nfe


def test_base_path_reproduces_upstream_batched(dream: SimpleNamespace) -> None:
    """Upstream's prefix cache with the entropy schedule handles a batch (its other paths do not)."""
    tiny, prompt = Tiny(dream), _prompt(batch=3)
    expected, expected_nfe = tiny.run(prompt, upstream=True, **_settings("entropy", "prefix"))
    got, nfe = tiny.run(prompt, sampler="lrd", **BASE, **_settings("entropy", "prefix"))
    assert torch.equal(got, expected)
    assert nfe == expected_nfe


@pytest.mark.parametrize("alg", list(ALGS))
def test_no_cache_reproduces_upstream_where_its_cache_is_exact(dream: SimpleNamespace, alg: str) -> None:
    """Upstream's block sampler always caches. With one layer its caches are exact (a layer's keys and
    values depend on its own token only), so the full-forward loop (``use_cache=False``) must then
    make upstream's decisions with upstream's forward count."""
    tiny, prompt = Tiny(dream, layers=1), _prompt()
    got, nfe = tiny.run(prompt, sampler="lrd", use_cache=False, **BASE, **_settings(alg, "prefix"))
    for cache in CACHES:
        expected, expected_nfe = tiny.run(prompt, upstream=True, **_settings(alg, cache))
        assert torch.equal(got, expected), cache
        assert nfe == expected_nfe, cache


def test_block_length_one_reproduces_upstream(dream: SimpleNamespace) -> None:
    """Upstream makes one cached forward after a refresh that already finished the block."""
    tiny, prompt = Tiny(dream), _prompt()
    for alg in ALGS:
        settings = _settings(alg, "prefix", max_new_tokens=4, block_length=1, steps=8)
        expected, expected_nfe = tiny.run(prompt, upstream=True, **settings)
        got, nfe = tiny.run(prompt, sampler="lrd", **BASE, **settings)
        assert torch.equal(got, expected)
        assert nfe == expected_nfe == 8


def test_single_step_blocks_are_finished(dream: SimpleNamespace) -> None:
    """One step per block: upstream's loop stops with masks left in the block; LRD finishes it in the
    same number of forwards."""
    tiny, prompt = Tiny(dream), _prompt()
    settings = _settings("entropy", "prefix", max_new_tokens=16, steps=2)
    _, expected_nfe = tiny.run(prompt, upstream=True, **settings)
    got, nfe = tiny.run(prompt, sampler="lrd", **BASE, **settings)
    _assert_complete(got, prompt, 16)
    assert nfe == expected_nfe


# --- LRD switched on ----------------------------------------------------------------------------------
@pytest.mark.parametrize("alg", list(ALGS))
@pytest.mark.parametrize("cache", [*CACHES, "none"])
def test_lrd_completes_in_no_more_forwards(dream: SimpleNamespace, cache: str, alg: str) -> None:
    tiny, prompt = Tiny(dream), _prompt(batch=2)
    settings = _settings(alg, "prefix" if cache == "none" else cache, use_cache=cache != "none")
    _, base_nfe = tiny.run(prompt, sampler="lrd", **BASE, **settings)
    got, nfe = tiny.run(prompt, sampler="lrd", **PAPER, **settings)  # the paper's settings
    _assert_complete(got, prompt, 24)
    # Holds here because this model's predictions settle at once, so Phase 1 ends after two forwards
    # and the KL early stop finalises blocks; refinement alone may spend more forwards than the base.
    assert nfe <= base_nfe
    if alg == "entropy":  # guaranteed without refinement: the schedule's length bounds every block
        got, nfe = tiny.run(prompt, sampler="lrd", lrd_refinement=False, **PAPER, **settings)
        _assert_complete(got, prompt, 24)
        assert nfe <= base_nfe


@pytest.mark.parametrize("cache", [*CACHES, "none"])
def test_lrd_samples_with_temperature(dream: SimpleNamespace, cache: str) -> None:
    tiny, prompt = Tiny(dream, sharp=False), _prompt(batch=2)
    settings = _settings("entropy", "prefix" if cache == "none" else cache, use_cache=cache != "none")
    got, _ = tiny.run(prompt, sampler="lrd", **{**settings, "temperature": 1.0, "top_k": 50})
    _assert_complete(got, prompt, 24)


@pytest.mark.parametrize("cache", [*CACHES, "none"])
def test_lrd_sequence_wide_early_stop(dream: SimpleNamespace, cache: str) -> None:
    """The dual cache reads later blocks from its block-start refreshes (a lookahead), the other
    loops from every forward; either way the answer completes in no more forwards than the
    block-scope stop needs."""
    tiny, prompt = Tiny(dream), _prompt(batch=2)
    settings = _settings("entropy", "prefix" if cache == "none" else cache, use_cache=cache != "none")
    got, nfe = tiny.run(prompt, sampler="lrd", lrd_early_stop_scope="sequence", **settings)
    _assert_complete(got, prompt, 24)
    _, block_nfe = tiny.run(prompt, sampler="lrd", lrd_early_stop_scope="block", **settings)
    assert nfe <= block_nfe


@pytest.mark.parametrize("alg", list(ALGS))
def test_dual_cache_batch_two_matches_rows_run_alone(dream: SimpleNamespace, alg: str) -> None:
    """Upstream's dual cache fails for batch > 1 (NVlabs/Fast-dLLM#57) and its threshold rule decides
    for row 0 only; here each row of a batch gets exactly what upstream gives it alone."""
    tiny, prompt = Tiny(dream), _prompt(batch=2, seed=2)
    settings = _settings(alg, "dual")
    got, _ = tiny.run(prompt, sampler="lrd", **BASE, **settings)
    for row in range(2):
        expected, _ = tiny.run(prompt[row : row + 1], upstream=True, **settings)
        assert torch.equal(got[row : row + 1], expected), row
    got, _ = tiny.run(prompt, sampler="lrd", **settings)
    _assert_complete(got, prompt, 24)


@pytest.mark.parametrize("cache", [*CACHES, "none"])
def test_padded_prompts(dream: SimpleNamespace, cache: str) -> None:
    """Left-padded batches, as eval.py builds them (upstream's cached loops fail on them)."""
    tiny, prompt = Tiny(dream), _prompt(batch=2)
    prompt[1, :2] = PAD
    settings = _settings("confidence_threshold", "prefix" if cache == "none" else cache, use_cache=cache != "none")
    for features in ({}, BASE):
        got, _ = tiny.run(prompt, attention_mask=prompt.ne(PAD), sampler="lrd", **features, **settings)
        _assert_complete(got, prompt, 24)


def test_history_records_every_forward(dream: SimpleNamespace) -> None:
    tiny, prompt = Tiny(dream), _prompt()
    out, nfe = tiny.run(
        prompt, sampler="lrd", return_dict_in_generate=True, output_history=True, **_settings("entropy", "dual")
    )
    assert len(out.history) == nfe
    assert torch.equal(out.history[-1], out.sequences)


def test_sample_takes_the_sampler_directly(dream: SimpleNamespace) -> None:
    tiny, prompt = Tiny(dream), _prompt()
    config = dream.block.DreamGenerationConfig(
        **GREEDY, max_length=prompt.shape[1] + 24, steps=12, alg="entropy", mask_token_id=MASK
    )
    with torch.no_grad():
        expected = dream.upstream[1](tiny.model, prompt, None, config, block_length=8)
    got = dream.switched[1](tiny.model, prompt, None, config, block_length=8, sampler="lrd", **BASE)
    assert torch.equal(got, expected)


# --- the default path and bad input ----------------------------------------------------------------
@pytest.mark.parametrize("sampler", [{}, {"sampler": None}, {"sampler": "default"}], ids=["absent", "none", "default"])
def test_default_path_is_upstream(dream: SimpleNamespace, sampler: dict[str, Any]) -> None:
    tiny, prompt = Tiny(dream), _prompt()
    for cache in CACHES:
        settings = _settings("confidence_threshold", cache, temperature=1.0, top_k=20)  # samples: same RNG use
        torch.manual_seed(7)
        expected, expected_nfe = tiny.run(prompt, upstream=True, **settings)
        torch.manual_seed(7)
        got, nfe = tiny.run(prompt, **sampler, **settings)
        assert torch.equal(got, expected)
        assert nfe == expected_nfe


def test_harness_settings_reach_the_sampler(dream: SimpleNamespace) -> None:
    """eval.py calls diffusion_generate with a fixed argument list: settings put in force around it
    (as the lm-eval launcher does) choose the sampler."""
    tiny, prompt = Tiny(dream), _prompt()
    settings = _settings("confidence_threshold", "dual")
    expected, expected_nfe = tiny.run(prompt, upstream=True, **settings)
    lrd, lrd_nfe = tiny.run(prompt, sampler="lrd", **settings)
    with active({"sampler": "lrd", **BASE}):
        got, nfe = tiny.run(prompt, **settings)
        assert torch.equal(got, expected) and nfe == expected_nfe
    with active({"sampler": "lrd"}):
        got, nfe = tiny.run(prompt, **settings)
        assert torch.equal(got, lrd) and nfe == lrd_nfe


def test_install_is_idempotent(dream: SimpleNamespace) -> None:
    mixin = dream.block.DreamGenerationMixin
    before = (vars(mixin)["diffusion_generate"], vars(mixin)["_sample"])
    lrd_dream.install(dream.block)
    assert (vars(mixin)["diffusion_generate"], vars(mixin)["_sample"]) == before
    assert lrd_dream.generate_switch(before[0]) is before[0]
    assert _original(before[0]) is dream.upstream[0] and _original(before[1]) is dream.upstream[1]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sampler": "lrd", "lrd_bogus": 1}, ValueError, "unknown LRD setting lrd_bogus"),
        ({"sampler": "lrd", "lrd_threshold": 0.5}, ValueError, "lrd_threshold is set by Fast-dLLM's own"),
        ({"sampler": "lrd", "lrd_tau_refine": "soon"}, TypeError, "tau_refine"),
        ({"sampler": "lrd", "lrd_r_f": 2.0}, ValueError, "r_f"),
        ({"lrd_mixing": False}, ValueError, "without sampler='lrd'"),
        ({"sampler": "fast"}, ValueError, "sampler must be one of"),
        ({"sampler": "lrd", "block_length": 7}, ValueError, "multiple of block_length"),
        ({"sampler": "lrd", "steps": 10}, ValueError, "steps .10. must be a multiple of the number of blocks"),
        ({"sampler": "lrd", "alg": "confidence_threshold", "threshold": 1.5}, ValueError, "threshold must be in"),
        ({"sampler": "lrd", "use_cache": "no"}, ValueError, "use_cache must be True or False"),
    ],
)
def test_bad_input_is_named(dream: SimpleNamespace, kwargs: dict[str, Any], error: type, match: str) -> None:
    tiny = Tiny(dream)
    with pytest.raises(error, match=match):
        tiny.run(_prompt(), **{**_settings("entropy", "prefix"), **kwargs})
    assert tiny.forwards == 0


def test_unswitched_sample_is_refused(dream: SimpleNamespace) -> None:
    """A ``_sample`` bound before `install` would silently run upstream's sampler."""
    tiny = Tiny(dream)
    tiny.model.diffusion_generate = types.MethodType(dream.switched[0], tiny.model)
    tiny.model._sample = types.MethodType(dream.upstream[1], tiny.model)
    with pytest.raises(RuntimeError, match=r"switched DreamGenerationMixin\._sample"):
        tiny.model.diffusion_generate(_prompt(), sampler="lrd", **_settings("entropy", "prefix"))


def test_enable_dream_switches_what_eval_imports(layout: Layout) -> None:
    """`enable_dream` leaves Fast-dLLM's ``model`` package imported, so it runs in its own process."""
    script = (
        "import sys\n"
        "from lrd_plugin.integrations.fast_dllm import enable_dream, enable_llada\n"
        "block = enable_dream(sys.argv[1])\n"
        "from model.generation_utils_block import DreamGenerationMixin\n"
        "assert DreamGenerationMixin is block.DreamGenerationMixin\n"
        "assert DreamGenerationMixin._sample.__lrd_switch__\n"
        "assert DreamGenerationMixin.diffusion_generate.__lrd_switch__\n"
        "assert enable_dream(sys.argv[1]) is block\n"
        "try:\n"
        "    enable_llada(sys.argv[1])\n"
        "except RuntimeError as error:\n"
        "    assert 'separate processes' in str(error)\n"
        "else:\n"
        "    raise AssertionError('LLaDA and Dream share the name model')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", script, str(layout.root)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr


# --- the project's network in Dream's checkpoint format -------------------------------------------
def test_dream_format_loads_in_upstream_with_the_same_logits(dream: SimpleNamespace, tmp_path: Any) -> None:
    """`save_dream` writes a checkpoint that upstream's own ``DreamModel.from_pretrained`` loads, and
    that model computes the project's network exactly: same logits at every position (Dream's shift is
    the sampler's, not the network's)."""
    from lrd_plugin.models import CharTokenizer, random_model_for
    from lrd_plugin.models.dream_format import save_dream

    tokenizer = CharTokenizer("abc0123+=")
    ours = random_model_for(tokenizer, d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=96, seed=3).eval()
    save_dream(ours, tokenizer, tmp_path)
    theirs = dream.package.DreamModel.from_pretrained(tmp_path).eval()
    assert theirs.generation_config.mask_token_id == tokenizer.mask_id
    ids = torch.randint(0, tokenizer.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(input_ids=ids).logits
        got = theirs(ids, "full").logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_switched_pairs_gives_upstreams_functions_and_the_switched_ones(dream: SimpleNamespace) -> None:
    original, switched = lrd_dream.switched_pairs(dream.block)
    assert original == dream.upstream and switched == dream.switched
