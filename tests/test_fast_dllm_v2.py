"""Fast-dLLM v2's protocol without a checkout: the model of our own that speaks it (`V2BlockModel`) and
LRD's v2 loop (`lrd_batch_sample`) called directly. Against upstream's own ``batch_sample``:
``integration_tests/test_v2.py``."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor

from lrd_plugin import LRDConfig
from lrd_plugin.integrations.fast_dllm.v2 import lrd_batch_sample, v2_config
from lrd_plugin.integrations.fast_dllm.v2_model import V2Cache, random_v2_model

VOCAB, MASK, PAD, STOP = 64, 63, 62, 61
TOKENIZER = SimpleNamespace(pad_token_id=PAD)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def prompts(lengths: list[int], seed: int = 0) -> Tensor:
    """Right-padded with the mask id, as v2's eval.py builds a batch."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), MASK)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(0, 60, (length,), generator=generator)
    return ids


def sample(ids: Tensor, lengths: list[int], config: LRDConfig, **kwargs: object) -> dict[int, Tensor]:
    model = random_v2_model(VOCAB, MASK, seed=1, sharpness=120.0)
    args = {"mask_id": MASK, "stop_token": STOP, "threshold": 0.9, **kwargs}
    return lrd_batch_sample(
        model,
        ids,
        TOKENIZER,
        32,
        64,
        8,
        min(lengths),
        torch.tensor(lengths),
        **args,
        config=config,  # type: ignore[arg-type]
    )


def test_sub_block_over_block_cache_matches_whole_block() -> None:
    """Recomputing a sub-block over the block cache gives what the whole-block forward gave when the
    rest of the block is unchanged: the block cache holds exactly the keys a block forward computes."""
    model = random_v2_model(VOCAB, MASK, seed=3)
    ids = prompts([70])
    with torch.no_grad():
        past = model.forward(input_ids=ids[:, :64], use_cache=True, update_past_key_values=True).past_key_values
        whole = model.forward(input_ids=ids[:, 64:70], use_cache=True, past_key_values=past, use_block_cache=True)
        assert past is not None and whole.block_past_key_values is not None
        assert past.get_seq_length() == 64 and whole.block_past_key_values.get_seq_length() == 6
        part = model.forward(
            input_ids=ids[:, 66:70],
            use_cache=True,
            past_key_values=past,
            use_block_cache=True,
            block_past_key_values=whole.block_past_key_values,
            replace_position=2,
        )
        assert past.get_seq_length() == 64  # without update_past_key_values the prefix cache stays
    torch.testing.assert_close(part.logits, whole.logits[:, 2:])


def test_prefix_cache_equals_one_forward() -> None:
    """A block decoded over the prefix cache sees what one forward over prefix + block sees."""
    model = random_v2_model(VOCAB, MASK, seed=3)
    ids = prompts([80])
    with torch.no_grad():
        full = model.forward(input_ids=ids).logits
        past = model.forward(input_ids=ids[:, :64], use_cache=True, update_past_key_values=True).past_key_values
        tail = model.forward(input_ids=ids[:, 64:], use_cache=True, past_key_values=past).logits
    torch.testing.assert_close(tail, full[:, 64:])


def test_logits_are_shifted_and_embeds_equal_ids() -> None:
    """Output i is the wrapped model's prediction at position i + 1; ``inputs_embeds`` equals ids."""
    model = random_v2_model(VOCAB, MASK, seed=3)
    ids = prompts([32])  # the appended mask starts the next block: the plain forward hides it too
    with torch.no_grad():
        shifted = model.forward(input_ids=ids).logits
        embeds = model.forward(inputs_embeds=model.get_input_embeddings()(ids)).logits
        direct = model.llada(torch.cat((ids, torch.tensor([[MASK]])), dim=1), block_size=32).logits
    torch.testing.assert_close(shifted, embeds)
    torch.testing.assert_close(shifted, direct[:, 1:])


def test_cache_drops_rows() -> None:
    cache = V2Cache([torch.arange(12.0).view(3, 1, 4, 1)], [torch.zeros(3, 1, 4, 1)])
    cache.keep_rows(torch.tensor([True, False, True]))
    assert len(cache) == 1 and cache.get_seq_length() == 4
    assert cache[0][0][:, 0, 0, 0].tolist() == [0.0, 8.0]


def test_sample_with_top_p() -> None:
    model = random_v2_model(VOCAB, MASK)
    logits = torch.randn(2, 5, VOCAB, generator=torch.Generator().manual_seed(0)) * 3
    tokens, probs = model.sample_with_top_p(logits, top_p=0.95, temperature=0.0)
    assert torch.equal(tokens, logits.argmax(-1))
    torch.testing.assert_close(probs, logits.softmax(-1))
    torch.manual_seed(0)
    tokens, probs = model.sample_with_top_p(logits, top_p=0.5, temperature=1.0)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 5))
    assert bool((probs.gather(-1, tokens[..., None]) > 0).all())  # every draw is inside its nucleus
    kept = (probs > 0).sum(-1)
    assert bool((kept >= 1).all()) and bool((kept < VOCAB).all())


@pytest.mark.parametrize("config", [LRDConfig(), LRDConfig(early_stop=False), LRDConfig.base()], ids=str)
@pytest.mark.parametrize("lengths", [[5, 21, 13], [40, 75, 50], [32, 10, 64, 70]])
def test_lrd_loop_decodes_everything_and_honours_stop(config: LRDConfig, lengths: list[int]) -> None:
    config = config.replace(early_stop_scope="block")
    out = sample(prompts(lengths), lengths, config, use_block_cache=True)
    assert sorted(out) == list(range(len(lengths)))
    for request, tokens in out.items():
        assert not (tokens == MASK).any() and bool((tokens < VOCAB).all())
        answer = tokens[lengths[request] :]
        stops = (answer == STOP).nonzero().flatten()
        if len(stops):
            assert bool((answer[int(stops[0]) + 1 :] == PAD).all())


def test_rows_decode_as_they_would_alone() -> None:
    lengths = [32, 10, 64, 70]
    ids = prompts(lengths)
    config = LRDConfig(early_stop_scope="block")
    together = sample(ids, lengths, config)
    for request, length in enumerate(lengths):
        alone = sample(ids[request : request + 1, :length], [length], config)[0]
        width = min(len(alone), len(together[request]))
        assert torch.equal(together[request][:width], alone[:width]), request


def test_settings_are_checked() -> None:
    assert v2_config({}).early_stop_scope == "block"  # v2 predicts only the current block
    with pytest.raises(ValueError, match="lrd_early_stop_scope must be 'block'"):
        sample(prompts([5]), [5], v2_config({"early_stop_scope": "sequence"}))
    with pytest.raises(ValueError, match="lrd_threshold is set by Fast-dLLM's own arguments"):
        v2_config({"threshold": 0.5})
    with pytest.raises(ValueError, match=r"seq_len must be a \[1\] torch.long tensor"):
        lrd_batch_sample(
            random_v2_model(VOCAB, MASK),
            prompts([5]),
            TOKENIZER,
            32,
            64,
            8,
            5,
            torch.tensor([5.0]),
            config=v2_config({}),
        )
