"""Bad input gets a clear error that names the parameter and what is allowed, never a crash from
deep inside torch (or, worse, a silent wrong answer)."""

import pytest
import torch
from torch import nn

from lrd_plugin import HFDenoiser, LRDConfig, LRDSampler, generate
from tests.conftest import MASK, VOCAB, tiny_llada


@pytest.fixture(scope="module")
def model():
    return tiny_llada(seed=0)


@pytest.fixture(scope="module")
def adapter(model):
    return HFDenoiser(model, MASK)


PROMPT = torch.tensor([[1, 2, 3]])


class IdsOnly(nn.Module):
    """A model that can only be called with token ids: LRD cannot feed it mixture embeddings."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB, 8)
        self.head = nn.Linear(8, VOCAB)

    def get_input_embeddings(self):
        return self.wte

    def forward(self, input_ids):
        return self.head(self.wte(input_ids))


class LinearEmbeddings(nn.Module):
    """Takes inputs_embeds, but its input embedding is not a lookup table."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def get_input_embeddings(self):
        return self.proj

    def forward(self, inputs_embeds):
        return (self.proj(inputs_embeds),)


class NoGetter(nn.Module):
    def forward(self, inputs_embeds):
        return (inputs_embeds,)


class Wrapped(nn.Module):
    """The tiny LLaDA behind a narrower forward signature (no cache, or no padding arguments)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()


class NoCacheModel(Wrapped):
    def forward(self, inputs_embeds, attention_mask=None, position_ids=None):
        return self.inner(inputs_embeds=inputs_embeds, attention_mask=attention_mask, position_ids=position_ids)


class EmbedsOnlyModel(Wrapped):
    def forward(self, inputs_embeds):
        return self.inner(inputs_embeds=inputs_embeds)


# --- generate --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gen_length", "block_length", "message"),
    [
        (10, 4, r"gen_length \(10\) must be a multiple of block_length \(4\)"),
        (16, 5, r"gen_length \(16\) must be a multiple of block_length \(5\)"),
        (8, 16, r"block_length must be an integer in \[1, gen_length=8\], got 16"),
        (8, 0, r"block_length must be an integer in \[1, gen_length=8\], got 0"),
        (8, -4, r"block_length must be an integer in \[1, gen_length=8\], got -4"),
        (0, 4, r"gen_length must be a positive integer, got 0"),
        (-8, 4, r"gen_length must be a positive integer, got -8"),
        (8.0, 4, r"gen_length must be a positive integer, got 8.0"),
    ],
)
def test_generate_rejects_bad_lengths(adapter, gen_length, block_length, message):
    with pytest.raises(ValueError, match=message):
        generate(adapter, PROMPT, gen_length=gen_length, block_length=block_length)


def test_the_multiple_error_suggests_a_valid_gen_length(adapter):
    with pytest.raises(ValueError, match=r"e\.g\. gen_length=12") as err:
        generate(adapter, PROMPT, gen_length=10, block_length=4)
    suggested = int(str(err.value).rsplit("=", 1)[1])
    assert generate(adapter, PROMPT, gen_length=suggested, block_length=4).generated.shape == (1, suggested)


@pytest.mark.parametrize(
    "prompt",
    [
        torch.tensor([1, 2, 3]),  # 1-D
        torch.tensor([[[1, 2, 3]]]),  # 3-D
        torch.tensor([[1, 2, 3]], dtype=torch.int32),
        torch.tensor([[1.0, 2.0, 3.0]]),
    ],
    ids=["1d", "3d", "int32", "float"],
)
def test_generate_rejects_a_prompt_that_is_not_a_2d_long_tensor(adapter, prompt):
    with pytest.raises(ValueError, match=r"prompt must be a \[batch, length\] LongTensor"):
        generate(adapter, prompt, gen_length=4, block_length=4)


def test_generate_rejects_a_prompt_given_as_a_python_list(adapter):
    """Regression: `_check_arguments` calls `prompt.dim()` first, so a list dies with AttributeError."""
    with pytest.raises((TypeError, ValueError), match="prompt"):
        generate(adapter, [[1, 2, 3]], gen_length=4, block_length=4)


@pytest.mark.parametrize("bad_id", [VOCAB, VOCAB + 7, -1])
def test_generate_rejects_prompt_ids_outside_the_vocabulary(adapter, bad_id):
    prompt = torch.tensor([[1, bad_id, 3]])
    with pytest.raises(ValueError, match=rf"prompt token ids must be in \[0, {VOCAB - 1}\]"):
        generate(adapter, prompt, gen_length=4, block_length=4)


@pytest.mark.parametrize("shape", [(1, 4), (2, 3), (3,), (1, 3, 1)])
def test_generate_rejects_an_attention_mask_of_the_wrong_shape(adapter, shape):
    with pytest.raises(ValueError, match=r"attention_mask must have the prompt's shape \(1, 3\)"):
        generate(adapter, PROMPT, gen_length=4, block_length=4, attention_mask=torch.ones(shape, dtype=torch.long))


@pytest.mark.parametrize("cache", ["full", "Prefix", "", None])
def test_generate_rejects_unknown_cache_modes(adapter, cache):
    with pytest.raises(ValueError, match=r"cache must be one of \['none', 'prefix'\]"):
        generate(adapter, PROMPT, gen_length=4, block_length=4, cache=cache)


def test_prefix_cache_needs_a_model_that_takes_past_key_values(model):
    no_cache = HFDenoiser(NoCacheModel(model), MASK)
    assert not no_cache.supports_cache
    with pytest.raises(ValueError, match=r"cache='prefix' needs a model that takes past_key_values"):
        generate(no_cache, PROMPT, gen_length=4, block_length=4, cache="prefix")
    # the same adapter is fine without the cache
    assert generate(no_cache, PROMPT, gen_length=4, block_length=4).generated.shape == (1, 4)


def test_empty_prompt_is_rejected_for_a_shifted_model(model):
    empty = torch.zeros(1, 0, dtype=torch.long)
    with pytest.raises(ValueError, match=r"prompt must hold at least one token .*shift=1"):
        generate(HFDenoiser(model, MASK, shift=1), empty, gen_length=4, block_length=4)
    # an unshifted model predicts position i from position i and needs no prompt at all
    out = generate(HFDenoiser(model, MASK), empty, gen_length=4, block_length=4)
    assert out.generated.shape == (1, 4) and not (out.generated == MASK).any()


def test_generate_rejects_a_config_that_is_not_an_lrd_config(adapter):
    """Regression: a dict (e.g. read from YAML) is used as if it were an LRDConfig -> AttributeError."""
    with pytest.raises(TypeError, match="config"):
        generate(adapter, PROMPT, gen_length=4, block_length=4, config={"policy": "threshold"})


def test_left_padding_is_not_silently_ignored_by_a_model_without_attention_mask(model):
    """Regression: HFDenoiser.forward drops attention_mask / position_ids the model does not take, so a
    left-padded row silently attends to its padding (generate promises it decodes as it would alone)."""
    adapter = HFDenoiser(EmbedsOnlyModel(model), MASK)
    prompt = torch.tensor([[0, 0, 5, 6], [1, 2, 3, 4]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    with pytest.raises(ValueError, match="attention_mask"):
        generate(adapter, prompt, gen_length=4, block_length=4, attention_mask=mask)


# --- HFDenoiser ------------------------------------------------------------------------------------


def test_adapter_rejects_a_model_that_cannot_take_inputs_embeds():
    with pytest.raises(TypeError, match=r"IdsOnly\.forward does not accept inputs_embeds"):
        HFDenoiser(IdsOnly(), MASK)


@pytest.mark.parametrize("mask_id", [-1, VOCAB, VOCAB + 100])
def test_adapter_rejects_a_mask_id_outside_the_vocabulary(model, mask_id):
    with pytest.raises(ValueError, match=rf"mask_id must be in \[0, {VOCAB - 1}\].*got {mask_id}"):
        HFDenoiser(model, mask_id)


@pytest.mark.parametrize("mask_id", [3.5, True])
def test_adapter_rejects_a_mask_id_that_is_not_an_int(model, mask_id):
    """Regression: a float or bool mask id passes the range check; generate then crashes inside torch
    (IndexError for 3.5 at `embedding[mask_id]`, a shape-mismatch RuntimeError for True)."""
    with pytest.raises((TypeError, ValueError), match="mask_id"):
        HFDenoiser(model, mask_id)


@pytest.mark.parametrize("shift", [2, -1, "1", None])
def test_adapter_rejects_a_shift_other_than_0_or_1(model, shift):
    with pytest.raises(ValueError, match=r"shift must be 0 .* or 1 .*, got"):
        HFDenoiser(model, MASK, shift=shift)


@pytest.mark.parametrize("module", [LinearEmbeddings, NoGetter])
def test_adapter_needs_an_nn_embedding_as_input_embeddings(module):
    with pytest.raises(TypeError, match=rf"{module.__name__}\.get_input_embeddings\(\) must return an nn\.Embedding"):
        HFDenoiser(module(), 3)


# --- LRDSampler ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table(model):
    return model.get_input_embeddings().weight.detach()


@pytest.mark.parametrize("mask_id", [-1, VOCAB, 1000])
def test_sampler_rejects_a_mask_id_outside_the_embedding_table(table, mask_id):
    with pytest.raises(ValueError, match=rf"mask_id must be in \[0, {VOCAB - 1}\] \(the model's vocabulary\)"):
        LRDSampler(LRDConfig(), table, mask_id)


@pytest.mark.parametrize("mask_id", [3.5, True])
def test_sampler_rejects_a_mask_id_that_is_not_an_int(table, mask_id):
    """Regression: `embedding[mask_id]` fails inside torch for 3.5; True is accepted and indexes as a
    boolean mask, giving a [1, vocab, dim] "mask embedding" that breaks the first step."""
    with pytest.raises((TypeError, ValueError), match="mask_id"):
        LRDSampler(LRDConfig(), table, mask_id)


@pytest.mark.parametrize("shape", [(32,), (1, VOCAB, 32), ()])
def test_sampler_rejects_an_embedding_that_is_not_2d(shape):
    with pytest.raises(ValueError, match=r"embedding must be the \[vocab, dim\] input embedding table"):
        LRDSampler(LRDConfig(), torch.zeros(shape), 0)


def _state(table, batch=2, width=4):
    sampler = LRDSampler(LRDConfig(), table, MASK)
    return sampler, sampler.init_block(torch.full((batch, width), MASK), width)


@pytest.mark.parametrize("shape", [(2, 4), (1, 4, VOCAB), (2, 3, VOCAB), (2, 5, VOCAB), (2, 4, VOCAB, 1)])
def test_sampler_rejects_logits_of_the_wrong_shape(table, shape):
    sampler, state = _state(table)
    with pytest.raises(ValueError, match=r"logits must have shape \[2, 4, vocab\] \(batch, window\)"):
        sampler.step(state, torch.randn(shape))


@pytest.mark.parametrize("vocab", [MASK, 5, VOCAB + 1])
def test_sampler_rejects_logits_whose_vocabulary_misses_the_mask_or_exceeds_the_table(table, vocab):
    sampler, state = _state(table)
    with pytest.raises(ValueError, match=rf"logits vocabulary \({vocab}\) must contain mask_id={MASK}"):
        sampler.step(state, torch.randn(2, 4, vocab))


def test_sampler_rejects_a_block_length_outside_the_window(table):
    sampler = LRDSampler(LRDConfig(), table, MASK)
    for bad in (0, 5):
        with pytest.raises(ValueError, match=r"block_length must be in \[1, 4\] \(the window\)"):
            sampler.init_block(torch.full((1, 4), MASK), bad)


@pytest.mark.parametrize("config", [LRDConfig(), LRDConfig.base()], ids=["lrd", "base"])
@pytest.mark.parametrize("where", ["all", "head"])
def test_nan_weights_in_a_real_model_give_a_clear_error(config, where):
    broken = tiny_llada(seed=1)
    with torch.no_grad():
        params = broken.parameters() if where == "all" else [broken.transformer.ff_out.weight]
        for p in params:
            p.fill_(float("nan"))
    with pytest.raises(ValueError, match=r"NaN or \+inf logits"):
        generate(HFDenoiser(broken, MASK), PROMPT, gen_length=8, block_length=4, config=config)


@pytest.mark.parametrize("config", [LRDConfig(), LRDConfig.base(policy="threshold")], ids=["lrd", "base"])
def test_positive_infinite_logits_are_rejected_not_decoded(table, config):
    """Regression: `_check_logits` only looks for NaN. A +inf logit (e.g. an fp16 overflow) turns the
    position's log-softmax row into NaN: the base policy silently commits token 0 there (argmax of a
    NaN row), LRD silently builds a NaN mixture and only fails one forward later."""
    sampler = LRDSampler(config, table, MASK)
    state = sampler.init_block(torch.full((1, 4), MASK), 4)
    logits = torch.randn(1, 4, VOCAB)
    logits[0, 0, 3] = float("inf")
    with pytest.raises(ValueError, match="inf"):
        sampler.step(state, logits)
