"""Mixture embeddings, entropy and KL: the numerical core of LRD."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lrd_plugin import mixture
from tests.reference_policies import reference_nucleus_mixture

MASK = 7


def _case(seed: int, vocab: int = 50, dim: int = 12, rows: int = 6, sharpness: float = 3.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=g) * sharpness
    table = torch.randn(vocab, dim, generator=g)
    return logits, table


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    top_p=st.floats(0.05, 1.0),
    r_f=st.floats(0.01, 1.0),
    form=st.sampled_from(["one_minus_entropy", "entropy"]),
    sharpness=st.floats(0.1, 12.0),
)
def test_capped_nucleus_equals_the_exact_nucleus_when_it_fits(seed, top_p, r_f, form, sharpness):
    logits, table = _case(seed, sharpness=sharpness)
    logp = mixture.log_probs(logits, MASK)
    got = mixture.mixture_embeddings(logp, table, MASK, top_p=top_p, r_f=r_f, alpha_form=form, cap=50)
    for row in range(logits.shape[0]):
        want = reference_nucleus_mixture(logp[row].exp(), table, table[MASK], top_p, r_f, form)
        torch.testing.assert_close(got[row], want, rtol=1e-5, atol=1e-5)


def test_cap_only_truncates_a_nucleus_larger_than_the_cap():
    logits, _table = _case(3, sharpness=0.2)  # flat: the 0.9-nucleus holds most of the vocabulary
    probs = mixture.log_probs(logits, MASK).exp()
    ids, weights = mixture.nucleus(probs, 0.9, cap=5)
    assert ids.shape[-1] == 5 and torch.allclose(weights.sum(-1), torch.ones(len(probs)))
    _exact_ids, exact_w = mixture.nucleus(probs, 0.9, cap=50)
    assert ((exact_w > 0).sum(-1) > 5).all()
    sharp = torch.zeros(1, 50)
    sharp[0, 3] = 20.0
    ids, weights = mixture.nucleus(mixture.log_probs(sharp, MASK).exp(), 0.9, cap=5)
    assert ids[0, 0] == 3 and weights[0, 0] == 1.0 and (weights[0, 1:] == 0).all()


def test_mixture_is_a_convex_combination_bounded_by_r_f():
    logits, table = _case(1)
    logp = mixture.log_probs(logits, MASK)
    r_f = 0.2
    alpha = mixture.mixing_weight(mixture.entropy(logp), logits.shape[-1], r_f, "one_minus_entropy")
    assert ((alpha >= 0) & (alpha <= r_f)).all()
    ids, weights = mixture.nucleus(logp.exp(), 0.9, 50)
    assert (weights >= 0).all() and torch.allclose(weights.sum(-1), torch.ones(len(weights)))
    expected = (weights.unsqueeze(-1) * table[ids]).sum(-2)
    got = mixture.mixture_embeddings(logp, table, MASK, top_p=0.9, r_f=r_f, alpha_form="one_minus_entropy", cap=50)
    torch.testing.assert_close(got, (1 - alpha[:, None]) * table[MASK] + alpha[:, None] * expected)
    assert ((got - table[MASK]).norm(dim=-1) <= r_f * (expected - table[MASK]).norm(dim=-1) + 1e-5).all()


def test_tiny_r_f_gives_the_mask_embedding():
    logits, table = _case(2)
    logp = mixture.log_probs(logits, MASK)
    got = mixture.mixture_embeddings(logp, table, MASK, top_p=0.9, r_f=1e-9, alpha_form="entropy", cap=8)
    torch.testing.assert_close(got, table[MASK].expand_as(got), rtol=0, atol=1e-7)


def test_mask_token_is_excluded_and_maths_is_fp32():
    logits = torch.zeros(2, 10, dtype=torch.bfloat16)
    logits[:, MASK] = 50.0
    logp = mixture.log_probs(logits, MASK)
    assert logp.dtype == torch.float32 and logp[:, MASK].exp().eq(0).all()
    assert torch.allclose(mixture.entropy(logp), torch.full((2,), math.log(9)))
    table = torch.randn(10, 4).to(torch.bfloat16)
    out = mixture.mixture_embeddings(logp, table, MASK, top_p=0.9, r_f=0.5, alpha_form="entropy", cap=4)
    assert out.dtype == torch.bfloat16


def test_entropy_and_kl_match_their_definitions():
    p = torch.tensor([[0.5, 0.25, 0.25, 0.0]])
    q = torch.tensor([[0.25, 0.25, 0.25, 0.25]])
    assert mixture.entropy(p.log()).item() == pytest.approx(1.5 * math.log(2))
    assert mixture.kl_divergence(p.log(), q.log()).item() == pytest.approx(0.5 * math.log(2) + 0.0)
    assert mixture.kl_divergence(q.log(), q.log()).item() == 0.0
    assert mixture.kl_divergence(p.log(), p.log()).item() == 0.0  # 0 log 0 - 0 log 0: no NaN
    assert mixture.kl_divergence(q.log(), p.log()).item() == math.inf  # q puts mass where p has none
    assert mixture.entropy(p.log(), p).item() == pytest.approx(1.5 * math.log(2))  # probs handed in


def test_shares_of_disjoint_row_ranges_sum_to_the_mixture():
    logits, table = _case(3)
    logp = mixture.log_probs(logits, MASK)
    recipe = mixture.mixture_recipe(logp, top_p=0.9, r_f=0.3, alpha_form="one_minus_entropy", cap=50)
    whole = recipe.embed(table, MASK)
    cuts = [0, 5, MASK, MASK + 1, table.shape[0]]  # the mask row alone in one range
    shares = [recipe.embed(table[a:b], MASK, a) for a, b in itertools.pairwise(cuts)]
    torch.testing.assert_close(torch.stack(shares).sum(0), whole)
    open_ = torch.zeros(whole.shape[:-1], dtype=torch.bool)
    open_[..., ::2] = True
    torch.testing.assert_close(recipe.select(open_).embed(table, MASK), whole[open_])


def test_a_recipe_of_the_open_positions_placed_back_is_the_mixture_there_and_the_mask_elsewhere():
    """The CPU step forms the nuclei of the open positions only and places them back: the open
    positions get the mixture of the recipe over every position, the others the bare mask row."""
    logits, table = _case(5)
    logp = mixture.log_probs(logits, MASK)
    kwargs = {"top_p": 0.9, "r_f": 0.3, "alpha_form": "one_minus_entropy", "cap": 50}
    whole = mixture.mixture_recipe(logp, **kwargs).embed(table, MASK)
    open_ = torch.tensor([True, False, False, True, True, False])
    placed = mixture.mixture_recipe(logp[open_], **kwargs).place(open_).embed(table, MASK)
    torch.testing.assert_close(placed[open_], whole[open_])
    torch.testing.assert_close(placed[~open_], table[MASK].expand(int((~open_).sum()), -1))


def test_a_narrow_nucleus_is_embedded_from_its_used_columns_only_and_exactly():
    logits, table = _case(4, sharpness=12.0)  # confident rows: nuclei of one or two tokens out of 50
    logp = mixture.log_probs(logits, MASK)
    recipe = mixture.mixture_recipe(logp, top_p=0.9, r_f=0.3, alpha_form="one_minus_entropy", cap=50)
    assert recipe.ids.shape[-1] == 50 and (recipe.weights > 0).sum(-1).max() <= 3
    dense = (recipe.weights.unsqueeze(-1) * table[recipe.ids]).sum(-2)  # every one of the 50 columns
    alpha = recipe.alpha.unsqueeze(-1)
    torch.testing.assert_close(recipe.embed(table, MASK), (1 - alpha) * table[MASK] + alpha * dense)
    nothing = recipe.select(torch.zeros(recipe.alpha.shape, dtype=torch.bool))
    assert nothing.embed(table, MASK).shape == (0, table.shape[1])


def test_the_kl_over_a_large_window_is_the_same_in_pieces(monkeypatch):
    """On the CPU a window larger than `CPU_CHUNK` elements goes in pieces (the allocator's cost of
    full-size temporaries): the same values as one pass, p = 0 and q = 0 terms included."""
    logits, _ = _case(6, rows=28)
    logp = mixture.log_probs(logits.reshape(4, 7, -1), MASK)
    logq = mixture.log_probs(logits.roll(1, dims=-1).reshape(4, 7, -1), MASK)
    logq[0, 0, 3] = -torch.inf  # p > 0 where q = 0: +inf
    whole = (logp.exp() * (logp - logq)).nansum(dim=-1).clamp_min(0.0)
    monkeypatch.setattr(mixture, "CPU_CHUNK", 3 * logp.shape[-1])  # pieces of 3 positions, the last of 1
    pieces = mixture.kl_divergence(logp, logq)
    assert pieces.shape == (4, 7) and pieces[0, 0] == torch.inf
    assert torch.equal(pieces, whole)
