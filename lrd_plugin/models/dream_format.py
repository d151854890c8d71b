"""The project's LLaDA network in Dream's checkpoint format, for Fast-dLLM's Dream loops.

Dream (Dream-org/Dream-v0-7B) is a Qwen2 network used as a masked diffusion LM: the same pre-norm
blocks as LLaDA's (RMSNorm, RoPE, bidirectional attention, SwiGLU MLP) with biases on q, k and v, and
one convention of its own: the output at position i - 1 is the prediction *for* token i (the model
starts from an autoregressive one). A network trained here with that shift (``--objective dream`` in
``benchmarks/train_tiny_llada.py``) is saved by `save_dream` with Dream's parameter names and
``DreamConfig`` fields (zero q/k/v biases), so upstream's own ``DreamModel.from_pretrained`` loads it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor

from .llada import LLaDAModel, _import_safetensors
from .tokenizer import CharTokenizer

# the project's name (inside ``model.transformer.blocks.{i}.``) -> Dream's (inside ``model.layers.{i}.``)
BLOCK_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "q_proj.weight": "self_attn.q_proj.weight",
    "k_proj.weight": "self_attn.k_proj.weight",
    "v_proj.weight": "self_attn.v_proj.weight",
    "attn_out.weight": "self_attn.o_proj.weight",
    "ff_norm.weight": "post_attention_layernorm.weight",
    "ff_proj.weight": "mlp.gate_proj.weight",
    "up_proj.weight": "mlp.up_proj.weight",
    "ff_out.weight": "mlp.down_proj.weight",
}
BIASED = ("q_proj", "k_proj", "v_proj")  # Qwen2 has biases there; the project's network has none


def dream_state_dict(model: LLaDAModel) -> dict[str, Tensor]:
    """`model`'s weights under Dream's names, with zero q/k/v biases."""
    config = model.config
    if config.include_bias or config.weight_tying or config.input_emb_norm:
        raise ValueError("only a bias-free, untied LLaDA network without input-embedding scaling maps onto Dream")
    source = model.state_dict()
    out = {
        "model.embed_tokens.weight": source["model.transformer.wte.weight"],
        "model.norm.weight": source["model.transformer.ln_f.weight"],
        "lm_head.weight": source["model.transformer.ff_out.weight"],
    }
    for index in range(config.n_layers):
        prefix = f"model.transformer.blocks.{index}."
        for ours, theirs in BLOCK_NAMES.items():
            out[f"model.layers.{index}.{theirs}"] = source[prefix + ours]
        for name in BIASED:
            weight = source[prefix + f"{name}.weight"]
            out[f"model.layers.{index}.self_attn.{name}.bias"] = torch.zeros(weight.shape[0], dtype=weight.dtype)
    return {name: tensor.detach().contiguous() for name, tensor in out.items()}


def dream_config(model: LLaDAModel) -> dict[str, object]:
    """``config.json`` for upstream's ``DreamConfig`` (``model_type: Dream``)."""
    config = model.config
    return {
        "architectures": ["DreamModel"],
        "model_type": "Dream",
        "vocab_size": config.embedding_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.mlp_hidden_size,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "hidden_act": "silu",
        "max_position_embeddings": config.max_sequence_length,
        "rms_norm_eps": config.rms_norm_eps,
        "rope_theta": config.rope_theta,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "use_cache": False,
        "attention_dropout": 0.0,
        "mask_token_id": config.mask_token_id,
        "pad_token_id": config.pad_token_id,
        "eos_token_id": config.eos_token_id,
        "torch_dtype": "float32",
    }


def generation_config(model: LLaDAModel, tokenizer: CharTokenizer) -> dict[str, object]:
    """``generation_config.json``: Dream's ``from_pretrained`` reads its special tokens from there."""
    config = model.config
    return {
        "mask_token_id": config.mask_token_id,
        "pad_token_id": config.pad_token_id,
        "bos_token_id": tokenizer.bos_id,
        "eos_token_id": config.eos_token_id,
    }


def save_dream(model: LLaDAModel, tokenizer: CharTokenizer, out: str | Path) -> None:
    """Write ``config.json``, ``generation_config.json``, ``model.safetensors`` (Dream's names) and
    the tokenizer into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(dream_config(model), indent=2) + "\n")
    (out / "generation_config.json").write_text(json.dumps(generation_config(model, tokenizer), indent=2) + "\n")
    # transformers refuses safetensors files without the "format" metadata
    _import_safetensors().save_file(dream_state_dict(model), str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save(out)
