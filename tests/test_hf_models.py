"""The reference decoder on plain transformers masked LMs (runs under transformers 4.x and 5.x)."""

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the [hf] extra is not installed")

from lrd_plugin import HFDenoiser, LRDConfig, generate  # noqa: E402
from tests.reference_policies import reference_generate  # noqa: E402

VOCAB, MASK = 50, 49


def tiny_mlm(kind: str = "bert", seed: int = 0):
    torch.manual_seed(seed)
    common = {
        "vocab_size": VOCAB,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
    }
    if kind == "bert":
        model = transformers.BertForMaskedLM(transformers.BertConfig(**common))
    else:
        model = transformers.RobertaForMaskedLM(transformers.RobertaConfig(pad_token_id=1, **common))
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(40.0)  # confident enough for parallel commits
    return model.eval()


class IdsOnly(torch.nn.Module):
    """The oracle's calling convention (`input_ids`, optional cache args) over an HF masked LM."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, past_key_values=None, use_cache=False):
        return self.model(input_ids=input_ids)


@pytest.mark.parametrize("kind", ["bert", "roberta"])
@pytest.mark.parametrize("policy", ["low_confidence", "threshold", "factor", "lowest_entropy"])
def test_masked_lm_base_policies_match_the_oracle(kind, policy):
    model = tiny_mlm(kind)
    adapter = HFDenoiser(model, MASK)
    prompt = torch.randint(2, MASK, (1, 6), generator=torch.Generator().manual_seed(0))
    out = generate(adapter, prompt, gen_length=12, block_length=6, config=LRDConfig.base(policy=policy))
    want, nfe = reference_generate(IdsOnly(model), prompt, gen_length=12, block_length=6, mask_id=MASK, policy=policy)
    assert torch.equal(out.sequences, want) and out.nfe == nfe


def test_lrd_on_a_masked_lm_refines_and_leaves_no_mask():
    adapter = HFDenoiser(tiny_mlm("bert", seed=3), MASK)
    prompt = torch.randint(2, MASK, (2, 5), generator=torch.Generator().manual_seed(1))
    out = generate(adapter, prompt, gen_length=16, block_length=8, config=LRDConfig.paper(), record_kl=True)
    assert not (out.generated == MASK).any()
    assert (out.refine_steps >= 1).all()
    assert len(out.kl_trace) == 2 and all(len(block) >= 2 for block in out.kl_trace)


@pytest.mark.parametrize(("kind", "offset"), [("bert", 0), ("roberta", 2)])
def test_left_padded_batch_decodes_each_row_as_alone(kind, offset):
    adapter = HFDenoiser(tiny_mlm(kind, seed=5), MASK, position_offset=offset)
    g = torch.Generator().manual_seed(2)
    short, long = torch.randint(2, MASK, (1, 3), generator=g), torch.randint(2, MASK, (1, 6), generator=g)
    batch = torch.cat([torch.cat([torch.zeros(1, 3, dtype=torch.long), short], 1), long])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    cfg = LRDConfig(policy="threshold")
    together = generate(adapter, batch, attention_mask=mask, gen_length=8, block_length=4, config=cfg)
    for row, prompt in enumerate((short, long)):
        alone = generate(
            adapter, prompt, attention_mask=torch.ones_like(prompt), gen_length=8, block_length=4, config=cfg
        )
        assert torch.equal(together.generated[row], alone.generated[0])
        assert int(together.nfe_per_sequence[row]) == alone.nfe


def test_prefix_cache_on_an_encoder_only_model_is_refused_clearly():
    adapter = HFDenoiser(tiny_mlm("bert"), MASK)
    with pytest.raises(ValueError, match="cache='prefix' needs a model that takes past_key_values"):
        generate(adapter, torch.tensor([[3, 4]]), gen_length=4, block_length=4, cache="prefix")
