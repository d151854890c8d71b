"""Block-diffusion attention of the LLaDA-architecture model: the mask and the cache protocol."""

from __future__ import annotations

import pytest
import torch

from lrd_plugin import HFDenoiser, LRDConfig, generate
from lrd_plugin.models import LLaDAModel, block_attention_mask
from tests.test_models import random_ids, small_model


@torch.no_grad()
def test_mask_lets_a_token_see_its_own_and_earlier_blocks_only() -> None:
    positions = torch.arange(7)[None]
    mask = block_attention_mask(positions, positions, 3)[0, 0]
    for i in range(7):
        for j in range(7):
            assert bool(mask[i, j]) == (j // 3 <= i // 3)


@torch.no_grad()
def test_earlier_blocks_do_not_see_later_ones() -> None:
    model = small_model()
    ids = random_ids(2, 12)
    changed = ids.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % 40
    first = model(input_ids=ids, block_size=4).logits
    second = model(input_ids=changed, block_size=4).logits
    torch.testing.assert_close(first[:, :8], second[:, :8], rtol=0, atol=1e-6)
    assert not torch.allclose(first[:, 8:], second[:, 8:])
    # with full attention every position sees the change
    assert not torch.allclose(model(input_ids=ids).logits[:, :8], model(input_ids=changed).logits[:, :8])


@torch.no_grad()
def test_one_block_larger_than_the_sequence_is_full_attention() -> None:
    model = small_model()
    ids = random_ids(2, 10)
    assert torch.equal(model(input_ids=ids, block_size=16).logits, model(input_ids=ids).logits)


@torch.no_grad()
def test_cache_of_finished_blocks_reproduces_the_full_block_forward() -> None:
    """The protocol of SGLang's and Fast-dLLM v2's loops: prefill whole blocks, then one block at a time."""
    model = small_model()
    ids = random_ids(2, 12)
    full = model(input_ids=ids, block_size=4).logits
    cache = model(input_ids=ids[:, :8], use_cache=True, block_size=4).past_key_values
    last = model(input_ids=ids[:, 8:], past_key_values=cache, block_size=4).logits
    torch.testing.assert_close(last, full[:, 8:], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_block_mode_with_left_padding_matches_the_row_alone() -> None:
    """Blocks count real tokens, as the decoder numbers positions of a left-padded row."""
    model = small_model()
    ids = random_ids(1, 9)
    alone = model(input_ids=ids, block_size=4).logits
    padded = torch.cat((torch.zeros(1, 3, dtype=torch.long), ids), dim=1)
    keys = torch.cat((torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 9, dtype=torch.long)), dim=1)
    positions = (keys.cumsum(dim=1) - 1).clamp_min(0)
    out = model(input_ids=padded, attention_mask=keys, position_ids=positions, block_size=4).logits
    torch.testing.assert_close(out[:, 3:], alone, rtol=1e-5, atol=1e-5)
    # and with a padded cache
    cache = model(
        input_ids=padded[:, :11],
        attention_mask=keys[:, :11],
        position_ids=positions[:, :11],
        use_cache=True,
        block_size=4,
    ).past_key_values
    tail = model(
        input_ids=padded[:, 11:],
        attention_mask=keys,
        position_ids=positions[:, 11:],
        past_key_values=cache,
        block_size=4,
    ).logits
    torch.testing.assert_close(tail, alone[:, 8:], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_a_four_dimensional_mask_equals_the_block_mode() -> None:
    model = small_model()
    ids = random_ids(2, 10)
    positions = torch.arange(10)[None]
    mask = block_attention_mask(positions, positions, 4).expand(2, -1, -1, -1)
    assert torch.equal(model(input_ids=ids, attention_mask=mask).logits, model(input_ids=ids, block_size=4).logits)


def test_bad_block_settings_are_refused_with_the_parameter_named() -> None:
    model: LLaDAModel = small_model()
    ids = random_ids(1, 6)
    for bad in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match="block_size must be a positive int"):
            model(input_ids=ids, block_size=bad)
    with pytest.raises(ValueError, match="4-D attention_mask must be boolean"):
        model(input_ids=ids, attention_mask=torch.ones(1, 1, 6, 6))
    with pytest.raises(ValueError, match=r"4-D attention_mask must have shape \[1, 1, 6, 6\]"):
        model(input_ids=ids, attention_mask=torch.ones(1, 1, 5, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="block_size cannot be combined"):
        model(input_ids=ids, attention_mask=torch.ones(1, 1, 6, 6, dtype=torch.bool), block_size=2)


@torch.no_grad()
def test_decoder_in_block_mode_aligns_blocks_and_ignores_the_cache_mode() -> None:
    """A block-diffusion denoiser decodes the same with and without the prefix cache, and a padded
    row of a batch decodes as it does alone (its blocks are aligned to its own answer start)."""
    model = small_model()
    denoiser = HFDenoiser(model, mask_id=39, block_size=4)
    prompts = [random_ids(1, 5, seed=3)[0].clamp(max=38), random_ids(1, 7, seed=4)[0].clamp(max=38)]
    config = LRDConfig.base(policy="low_confidence")
    alone = [
        generate(denoiser, p[None], gen_length=8, block_length=4, config=config, cache=cache).generated
        for p in prompts
        for cache in ("none", "prefix")
    ]
    assert torch.equal(alone[0], alone[1]) and torch.equal(alone[2], alone[3])
    width = max(len(p) for p in prompts)
    ids = torch.stack([torch.cat((torch.zeros(width - len(p), dtype=torch.long), p)) for p in prompts])
    keys = torch.stack([torch.cat((torch.zeros(width - len(p)), torch.ones(len(p)))) for p in prompts]).long()
    batch = generate(denoiser, ids, attention_mask=keys, gen_length=8, block_length=4, config=config, cache="prefix")
    assert torch.equal(batch.generated[0], alone[0][0]) and torch.equal(batch.generated[1], alone[2][0])
    # block mode is a different model from full attention (the answer's blocks do not see later ones)
    full = generate(HFDenoiser(model, mask_id=39), prompts[0][None], gen_length=8, block_length=4, config=config)
    logits_block = model(input_ids=torch.cat((prompts[0], alone[0][0]))[None], block_size=4).logits
    logits_full = model(input_ids=torch.cat((prompts[0], full.generated[0]))[None]).logits
    assert not torch.allclose(logits_block, logits_full)


def test_block_mode_settings_are_checked() -> None:
    model = small_model()
    with pytest.raises(ValueError, match="block_size must be a positive int or None"):
        HFDenoiser(model, mask_id=39, block_size=0)
    denoiser = HFDenoiser(model, mask_id=39, block_size=4)
    with pytest.raises(ValueError, match=r"block_length must equal the block-diffusion model's block_size \(4\)"):
        generate(denoiser, random_ids(1, 5), gen_length=16, block_length=8)

    class FullOnly(torch.nn.Module):
        def forward(self, inputs_embeds: torch.Tensor) -> torch.Tensor:
            return inputs_embeds

        def get_input_embeddings(self) -> torch.nn.Embedding:
            return torch.nn.Embedding(40, 8)

    with pytest.raises(TypeError, match="takes no block_size"):
        HFDenoiser(FullOnly(), mask_id=39, block_size=4)


@torch.no_grad()
def test_training_two_stream_form_equals_what_each_block_sees_when_decoded() -> None:
    """The block-diffusion training step's noisy stream gets exactly the logits that decoding the
    block over a cache of the clean earlier blocks gets (random alignment, left padding)."""
    from benchmarks.train_tiny_llada import two_stream_inputs

    model = small_model()
    clean = random_ids(1, 13, seed=5).clamp(max=38)
    noisy = clean.clone()
    noisy[0, 6:] = torch.where(torch.arange(7) % 2 == 0, 39, clean[0, 6:])
    pad = 2
    clean_p = torch.cat((torch.zeros(1, pad, dtype=torch.long), clean), dim=1)
    noisy_p = torch.cat((torch.zeros(1, pad, dtype=torch.long), noisy), dim=1)
    keys = torch.cat((torch.zeros(1, pad), torch.ones(1, 13)), dim=1).long()
    offset = 3
    positions = (keys.cumsum(dim=1) - 1).clamp_min(0) + offset
    inputs, mask, both_positions = two_stream_inputs(clean_p, noisy_p, keys, positions, block_size=4)
    logits = model(input_ids=inputs, attention_mask=mask, position_ids=both_positions).logits[:, 15 + pad :]
    real_positions = torch.arange(13) + offset
    for block in sorted(set((real_positions // 4).tolist())):
        inside = (real_positions // 4 == block).nonzero().flatten()
        lo, hi = int(inside[0]), int(inside[-1]) + 1
        seq = torch.cat((clean[:, :lo], noisy[:, lo:hi]), dim=1)
        alone = model(input_ids=seq, position_ids=real_positions[None, :hi], block_size=4).logits
        torch.testing.assert_close(logits[:, lo:hi], alone[:, lo:hi], rtol=1e-5, atol=1e-5)
