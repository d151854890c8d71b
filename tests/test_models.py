"""Behaviour of the LLaDA-architecture model and the character tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lrd_plugin.models import CharTokenizer, LLaDAConfig, LLaDAModel, build_default_random_model

safetensors_torch = pytest.importorskip("safetensors.torch")


def small_config(**overrides: object) -> LLaDAConfig:
    values: dict[str, object] = dict(
        d_model=32,
        n_heads=4,
        n_kv_heads=2,  # exercise grouped-query attention
        n_layers=2,
        mlp_hidden_size=48,
        vocab_size=40,
        max_sequence_length=64,
        mask_token_id=39,
        eos_token_id=2,
        pad_token_id=0,
    )
    values.update(overrides)
    return LLaDAConfig(**values)


def small_model(seed: int = 0, **overrides: object) -> LLaDAModel:
    model = LLaDAModel(small_config(**overrides))
    model.init_weights(seed)
    return model.eval()


def random_ids(batch: int, length: int, seed: int = 1, vocab: int = 40) -> torch.Tensor:
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_ids_and_embeds_give_bitwise_equal_logits() -> None:
    model = small_model()
    ids = random_ids(2, 11)
    from_ids = model(input_ids=ids).logits
    from_embeds = model(inputs_embeds=model.get_input_embeddings()(ids)).logits
    assert from_ids.shape == (2, 11, 40)
    assert from_ids.dtype == torch.float32
    assert torch.equal(from_ids, from_embeds)


def test_exactly_one_input_is_required() -> None:
    model = small_model()
    ids = random_ids(1, 4)
    with pytest.raises(ValueError, match=r"input_ids.*inputs_embeds"):
        model()
    with pytest.raises(ValueError, match=r"input_ids.*inputs_embeds"):
        model(input_ids=ids, inputs_embeds=model.get_input_embeddings()(ids))


@torch.no_grad()
def test_truncated_prefix_cache_reproduces_full_forward() -> None:
    model = small_model()
    ids = random_ids(2, 12)
    full = model(input_ids=ids, use_cache=True)
    assert model(input_ids=ids).past_key_values is None
    assert len(full.past_key_values) == 2
    for key, value in full.past_key_values:
        assert key.shape == value.shape == (2, 2, 12, 8)  # [B, n_kv_heads, L, head_dim]

    split = 5
    prefix = tuple((k[:, :, :split], v[:, :, :split]) for k, v in full.past_key_values)
    rest = model(input_ids=ids[:, split:], past_key_values=prefix, use_cache=True)
    torch.testing.assert_close(rest.logits, full.logits[:, split:], atol=1e-5, rtol=1e-5)
    for (k_full, v_full), (k_rest, v_rest) in zip(full.past_key_values, rest.past_key_values, strict=True):
        torch.testing.assert_close(k_rest, k_full, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(v_rest, v_full, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_key_padding_mask_makes_left_padded_row_match_unpadded() -> None:
    model = small_model()
    short, long = random_ids(1, 6, seed=2)[0], random_ids(1, 9, seed=3)[0]
    n_pad = 3
    ids = torch.stack([torch.cat([torch.zeros(n_pad, dtype=torch.long), short]), long])
    mask = torch.ones_like(ids)
    mask[0, :n_pad] = 0
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)

    batched = model(input_ids=ids, attention_mask=mask, position_ids=position_ids).logits
    torch.testing.assert_close(batched[0, n_pad:], model(input_ids=short[None]).logits[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1], model(input_ids=long[None]).logits[0], atol=1e-5, rtol=1e-5)

    unmasked = model(input_ids=ids, position_ids=position_ids).logits
    assert not torch.allclose(unmasked[0, n_pad:], batched[0, n_pad:], atol=1e-3)


@torch.no_grad()
def test_explicit_default_positions_and_all_ones_mask_change_nothing() -> None:
    model = small_model()
    ids = random_ids(2, 7)
    reference = model(input_ids=ids).logits
    positions = torch.arange(7).expand(2, 7)
    assert torch.equal(model(input_ids=ids, position_ids=positions).logits, reference)
    assert torch.equal(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits, reference)


@torch.no_grad()
def test_sequences_longer_than_max_sequence_length_extend_rope() -> None:
    short_table = small_model(max_sequence_length=8)
    long_table = small_model(max_sequence_length=64)
    ids = random_ids(1, 20)
    assert torch.equal(short_table(input_ids=ids).logits, long_table(input_ids=ids).logits)


def test_state_dict_uses_reference_llada_names() -> None:
    keys = set(small_model().state_dict())
    prefix = "model.transformer."
    block = [
        "attn_norm",
        "q_proj",
        "k_proj",
        "v_proj",
        "attn_out",
        "ff_norm",
        "ff_proj",
        "up_proj",
        "ff_out",
    ]
    expected = {prefix + "wte.weight", prefix + "ln_f.weight", prefix + "ff_out.weight"}
    expected |= {f"{prefix}blocks.{i}.{name}.weight" for i in range(2) for name in block}
    assert keys == expected
    tied_keys = set(small_model(weight_tying=True).state_dict())
    assert tied_keys == expected - {prefix + "ff_out.weight"}


@pytest.mark.parametrize("overrides", [{}, {"weight_tying": True, "include_bias": True, "input_emb_norm": True}])
@torch.no_grad()
def test_save_load_round_trip_gives_identical_logits(tmp_path: Path, overrides: dict[str, object]) -> None:
    model = small_model(**overrides)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert "auto_map" not in config
    assert config["architectures"] == ["LLaDAModelLM"] and config["model_type"] == "llada"

    loaded = LLaDAModel.from_pretrained(tmp_path)
    assert loaded.config == model.config
    ids = random_ids(2, 9)
    assert torch.equal(loaded(input_ids=ids).logits, model(input_ids=ids).logits)

    half = LLaDAModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert half(input_ids=ids).logits.dtype == torch.bfloat16


@torch.no_grad()
def test_sharded_save_loads_the_same_weights_and_either_layout_replaces_the_other(tmp_path: Path) -> None:
    """Shards no larger than the cap (for a transfer that limits a file's size), the Hugging Face
    index beside them; saving again unsharded leaves one file, and no stale shard is read."""
    model = small_model()
    state = model.state_dict()
    largest = max(t.numel() * t.element_size() for t in state.values())
    model.save_pretrained(tmp_path, max_shard_bytes=largest)
    shards = sorted(tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and not (tmp_path / "model.safetensors").exists()
    assert all(f.stat().st_size <= largest + 1024 for f in shards)  # a shard's header is under 1 KiB here
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(state) and set(index["weight_map"].values()) == {f.name for f in shards}
    loaded = LLaDAModel.from_pretrained(tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())

    model.save_pretrained(tmp_path)
    assert not list(tmp_path.glob("model-*")) and (tmp_path / "model.safetensors").exists()
    loaded = LLaDAModel.from_pretrained(tmp_path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="max_shard_bytes must be a positive int"):
            model.save_pretrained(tmp_path, max_shard_bytes=bad)


def test_from_pretrained_reports_missing_and_unexpected_keys(tmp_path: Path) -> None:
    small_model().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    state = safetensors_torch.load_file(str(weights))
    state["model.transformer.extra.weight"] = state.pop("model.transformer.ln_f.weight")
    safetensors_torch.save_file(state, str(weights))
    with pytest.raises(ValueError, match=r"missing keys \['model.transformer.ln_f.weight'\]") as error:
        LLaDAModel.from_pretrained(tmp_path)
    assert "model.transformer.extra.weight" in str(error.value)


def test_config_loads_real_llada_json_and_round_trips() -> None:
    real_style = {
        "d_model": 64,
        "n_heads": 4,
        "n_kv_heads": 4,
        "n_layers": 2,
        "mlp_hidden_size": 128,
        "vocab_size": 100,
        "embedding_size": 128,
        "max_sequence_length": 256,
        "mask_token_id": 126,
        "eos_token_id": 99,
        "pad_token_id": 99,
        "rope_theta": 500000.0,
        "block_type": "llama",
        "activation_type": "silu",
        "layer_norm_type": "rms",
        "rope": True,
        "alibi": False,
        "include_qkv_bias": False,
        "bias_for_layer_norm": False,
        "auto_map": {"AutoModel": "modeling_llada.LLaDAModelLM"},
        "init_device": "meta",
        "attention_dropout": 0.0,
        "precision": "amp_bf16",
    }
    config = LLaDAConfig.from_dict(real_style)
    assert config.embedding_size == 128 and config.rope_theta == 500000.0
    assert LLaDAConfig.from_dict(config.to_dict()) == config
    assert small_config(n_kv_heads=None).n_kv_heads == 4


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"n_layers": 0}, "n_layers"),
        ({"d_model": 30}, "n_heads"),
        ({"n_kv_heads": 3}, "n_kv_heads"),
        ({"mask_token_id": 40}, "mask_token_id"),
        ({"embedding_size": 20}, "embedding_size"),
        ({"block_type": "sequential"}, "block_type.*llama"),
        ({"layer_norm_type": "default"}, "layer_norm_type.*rms"),
        ({"activation_type": "swiglu"}, "activation_type.*silu"),
        ({"rope": False}, "rope"),
    ],
)
def test_config_rejects_invalid_values(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        small_config(**overrides)


@pytest.mark.parametrize(
    ("key", "value"),
    [("alibi", True), ("block_group_size", 2), ("scale_logits", True), ("bias_for_layer_norm", True)],
)
def test_config_from_dict_rejects_reference_options_it_cannot_reproduce(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        LLaDAConfig.from_dict(small_config().to_dict() | {key: value})


def test_config_from_dict_names_missing_required_fields() -> None:
    data = small_config().to_dict()
    del data["mask_token_id"]
    with pytest.raises(ValueError, match=r"missing required fields \['mask_token_id'\]"):
        LLaDAConfig.from_dict(data)


def test_tokenizer_round_trip_specials_and_save_load(tmp_path: Path) -> None:
    tokenizer = CharTokenizer.default()
    assert (tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.mask_id) == (0, 1, 2, 3)
    assert tokenizer.vocab_size == 4 + 98
    text = "Hello, world!\n\t(x) = 42 ~"
    ids = tokenizer.encode(text)
    assert ids[0] == tokenizer.bos_id and len(ids) == len(text) + 1
    assert tokenizer.encode(text, add_bos=False) == ids[1:]
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([tokenizer.mask_id, *ids[1:3], tokenizer.eos_id]) == "He"
    assert tokenizer.decode([tokenizer.mask_id, *ids[1:3]], skip_special=False) == "<mask>He"
    assert tokenizer.decode(torch.tensor(ids)) == text

    tokenizer.save(tmp_path)
    loaded = CharTokenizer.load(tmp_path)
    assert loaded.encode(text) == ids and loaded.vocab_size == tokenizer.vocab_size


def test_tokenizer_errors_name_the_problem() -> None:
    tokenizer = CharTokenizer.default()
    with pytest.raises(ValueError, match="'é' at index 3"):
        tokenizer.encode("cafée")
    with pytest.raises(ValueError, match="token id 102"):
        tokenizer.decode([102])
    with pytest.raises(ValueError, match=r"repeated.*'a'"):
        CharTokenizer("aba")
    with pytest.raises(ValueError, match="<mask>"):
        CharTokenizer("ab", specials=("<pad>", "<bos>", "<eos>"))


@torch.no_grad()
def test_default_random_model_is_tiny_seeded_and_usable() -> None:
    model, tokenizer = build_default_random_model(seed=0)
    again, _ = build_default_random_model(seed=0)
    other, _ = build_default_random_model(seed=1)
    config = model.config
    assert (config.d_model, config.n_heads, config.n_layers, config.mlp_hidden_size) == (64, 4, 2, 128)
    assert config.mask_token_id == tokenizer.mask_id and config.embedding_size == tokenizer.vocab_size
    assert config.max_sequence_length == 512 and not model.training

    ids = torch.tensor([tokenizer.encode("2+2=") + [tokenizer.mask_id] * 3])
    logits = model(input_ids=ids).logits
    assert logits.shape == (1, 8, tokenizer.vocab_size)
    assert torch.equal(logits, again(input_ids=ids).logits)
    assert not torch.equal(logits, other(input_ids=ids).logits)
    assert float(model.transformer.wte.weight.std()) == pytest.approx(0.02, rel=0.1)


@pytest.mark.parametrize("overrides", [{"weight_tying": True}, {"include_bias": True}, {"input_emb_norm": True}])
def test_dream_format_refuses_what_dream_cannot_hold(overrides: dict[str, object]) -> None:
    from lrd_plugin.models.dream_format import dream_state_dict

    with pytest.raises(ValueError, match="bias-free, untied LLaDA network"):
        dream_state_dict(small_model(**overrides))


def test_dream_format_names_every_weight_once_with_zero_qkv_biases(tmp_path: Path) -> None:
    from lrd_plugin.models.dream_format import dream_state_dict, save_dream

    model = small_model()
    state = dream_state_dict(model)
    config = model.config
    biases = config.n_layers * (config.d_model + 2 * config.n_kv_heads * config.head_dim)  # q, k, v
    assert sum(t.numel() for t in state.values()) == sum(t.numel() for t in model.state_dict().values()) + biases
    assert not any(t.any() for name, t in state.items() if name.endswith(".bias"))
    assert torch.equal(state["lm_head.weight"], model.state_dict()["model.transformer.ff_out.weight"])
    save_dream(model, CharTokenizer("ab"), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "Dream" and config["mask_token_id"] == model.config.mask_token_id
    assert json.loads((tmp_path / "generation_config.json").read_text())["mask_token_id"] == model.config.mask_token_id
