"""A small, readable LLaDA-architecture masked diffusion language model.

LLaDA is a bidirectional Llama: pre-norm RMSNorm, rotary position embeddings,
SwiGLU MLP and full (non-causal) attention, trained to fill in ``<mask>`` tokens.
This implementation keeps the reference ``LLaDAModelLM`` (``block_type="llama"``)
parameter names and arithmetic, so checkpoints move between the two unchanged and
both give the same logits for the same weights.

Differences from the reference, all additive:

* ``attention_mask`` really masks padded keys (the reference ignores it);
* ``position_ids`` may be given, e.g. to keep left-padded rows at their true positions;
* the KV cache holds keys *after* RoPE, so a cached prefix can be cut by slicing;
* ``block_size`` switches on block-diffusion attention (as LLaDA2, SDAR and Fast-dLLM v2 use): a
  token sees the tokens of its own block and of earlier blocks only, so a loop can decode block by
  block over a cache of finished blocks. One checkpoint can be trained to serve both patterns.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .tokenizer import BPETokenizer, CharTokenizer

KVCache = tuple[tuple[Tensor, Tensor], ...]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
SHARD_INDEX_FILE = "model.safetensors.index.json"

# Fields whose other values would need code this module does not have.
_CHOICES: dict[str, tuple[Any, ...]] = {
    "block_type": ("llama",),
    "layer_norm_type": ("rms",),
    "activation_type": ("silu",),
    "rope": (True,),
    "model_type": ("llada",),
}

# Reference config options that we do not model as fields but that would change the
# network. A config asking for another value must fail instead of loading silently
# into a different model.
_REFERENCE_ONLY_OPTIONS: dict[str, tuple[Any, ...]] = {
    "alibi": (False,),
    "attention_layer_norm": (False,),
    "block_group_size": (1,),
    "include_qkv_bias": (False,),
    "layer_norm_with_affine": (True,),
    "multi_query_attention": (None, False),
    "rope_full_precision": (True,),
    "scale_logits": (False,),
}


@dataclass
class LLaDAConfig:
    """The subset of LLaDA's ``config.json`` that defines a ``block_type="llama"`` model.

    Field names are the reference's, so its config files load here and ours load there.
    ``n_kv_heads`` and ``embedding_size`` default to ``n_heads`` and ``vocab_size``.
    """

    d_model: int
    n_heads: int
    n_layers: int
    mlp_hidden_size: int
    vocab_size: int
    max_sequence_length: int
    mask_token_id: int
    n_kv_heads: int | None = None
    embedding_size: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    weight_tying: bool = False
    block_type: str = "llama"
    layer_norm_type: str = "rms"
    activation_type: str = "silu"
    rope: bool = True
    include_bias: bool = False
    input_emb_norm: bool = False
    architectures: list[str] = field(default_factory=lambda: ["LLaDAModelLM"])
    model_type: str = "llada"

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.embedding_size is None:
            self.embedding_size = self.vocab_size
        self._validate()

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    def _validate(self) -> None:
        for name in (
            "d_model",
            "n_heads",
            "n_kv_heads",
            "n_layers",
            "mlp_hidden_size",
            "vocab_size",
            "embedding_size",
            "max_sequence_length",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("rope_theta", "rms_norm_eps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.head_dim % 2:
            raise ValueError(f"d_model // n_heads must be even for RoPE, got {self.head_dim}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({self.n_kv_heads})")
        if self.embedding_size < self.vocab_size:
            raise ValueError(f"embedding_size ({self.embedding_size}) must be >= vocab_size ({self.vocab_size})")
        for name in ("mask_token_id", "eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if value is None and name != "mask_token_id":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.embedding_size:
                raise ValueError(f"{name} must be an int in [0, {self.embedding_size}), got {value!r}")
        for name, allowed in _CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLaDAConfig:
        """Build from a ``config.json`` dict.

        Keys we do not model (``auto_map``, ``init_device``, dropouts, ...) are ignored
        so real LLaDA configs load, unless they select a variant we cannot reproduce.
        """
        for name, allowed in _REFERENCE_ONLY_OPTIONS.items():
            if name in data and data[name] not in allowed:
                raise ValueError(f"{name} must be one of {allowed} (others unsupported), got {data[name]!r}")
        norm_bias = data.get("bias_for_layer_norm")
        if norm_bias is not None and norm_bias != data.get("include_bias", False):
            raise ValueError(f"bias_for_layer_norm must be None or equal to include_bias, got {norm_bias!r}")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"config is missing required fields {missing}")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class ModelOutput:
    """``logits``: [B, L_new, embedding_size]; ``past_key_values``: set when ``use_cache``."""

    logits: Tensor
    past_key_values: KVCache | None = None


class RMSNorm(nn.Module):
    """RMSNorm normalised in fp32 and cast back before the weight, as the reference does."""

    def __init__(self, dim: int, eps: float, bias: bool) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        h = self.weight * h.to(x.dtype)
        return h if self.bias is None else h + self.bias


def _rotate_half(x: Tensor) -> Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def _apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (half-split convention) in fp32, then cast back to the input dtype."""
    xf = x.float()
    return (xf * cos + _rotate_half(xf) * sin).to(x.dtype)


def _key_mask(attention_mask: Tensor | None, batch: int, n_keys: int) -> Tensor | None:
    """Turn a [B, K] padding mask into SDPA's boolean [B, 1, 1, K] mask.

    Returns None when nothing is masked, so unpadded input runs the exact unmasked
    kernel the reference runs.
    """
    if attention_mask is None:
        return None
    if tuple(attention_mask.shape) != (batch, n_keys):
        raise ValueError(
            f"attention_mask must have shape [batch, past + new] = {[batch, n_keys]}, got {list(attention_mask.shape)}"
        )
    mask = attention_mask.bool()
    if bool(mask.all()):
        return None
    # A row without any real key would turn softmax into NaNs; let it see everything.
    mask = mask | ~mask.any(dim=-1, keepdim=True)
    return mask[:, None, None, :]


def block_attention_mask(query_positions: Tensor, key_positions: Tensor, block_size: int) -> Tensor:
    """Block-diffusion attention: query i sees key j iff ``pos_j // block_size <= pos_i // block_size``.

    Positions are [B, Q] and [B, K] (or [1, ...]); returns a boolean [B, 1, Q, K] mask. Blocks are
    aligned to absolute position 0 of the real tokens, as SGLang and Fast-dLLM v2 lay them out.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size <= 0:
        raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
    query_blocks = torch.div(query_positions, block_size, rounding_mode="floor")
    key_blocks = torch.div(key_positions, block_size, rounding_mode="floor")
    return (key_blocks[:, None, None, :] <= query_blocks[:, None, :, None]).contiguous()


def _attention_mask(
    attention_mask: Tensor | None,
    batch: int,
    length: int,
    past_length: int,
    position_ids: Tensor,
    block_size: int | None,
) -> Tensor | None:
    """SDPA's boolean mask from a padding mask ([B, K]) or a full mask ([B, 1, Q, K]) and the block mode.

    The block mode's cache protocol: a cache holds whole blocks that precede the new tokens' blocks
    (the prompt's complete blocks, finished blocks), so every cached key is visible; blocks among the
    new tokens follow their ``position_ids``.
    """
    n_keys = past_length + length
    if attention_mask is not None and attention_mask.dim() == 4:
        if attention_mask.dtype != torch.bool or attention_mask.shape[1] != 1:
            raise ValueError("a 4-D attention_mask must be boolean [batch, 1, new, past + new] (True = attend)")
        if attention_mask.shape[0] not in (1, batch) or tuple(attention_mask.shape[2:]) != (length, n_keys):
            expected = [batch, 1, length, n_keys]
            raise ValueError(f"a 4-D attention_mask must have shape {expected}, got {list(attention_mask.shape)}")
        if block_size is not None:
            raise ValueError("block_size cannot be combined with a 4-D attention_mask (build the blocks into the mask)")
        mask = attention_mask
    else:
        mask = _key_mask(attention_mask, batch, n_keys)
        if block_size is None:
            return mask
        blocks = block_attention_mask(position_ids, position_ids, block_size)
        if bool(blocks.all()):  # one block over a cache of earlier ones: nothing is hidden
            return mask
        past = blocks.new_ones(blocks.shape[0], 1, length, past_length)
        blocks = torch.cat((past, blocks), dim=-1)
        mask = blocks if mask is None else blocks & mask
    # A query that sees no key would turn softmax into NaNs; let it see itself.
    if past_length == 0 and not bool(mask.any(dim=-1).all()):
        eye = torch.eye(length, dtype=torch.bool, device=mask.device)[None, None]
        mask = mask | (eye & ~mask.any(dim=-1, keepdim=True))
    return mask


class LLaDABlock(nn.Module):
    """Pre-norm bidirectional attention + SwiGLU MLP, named like the reference llama block."""

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        d, kv_dim, bias = config.d_model, config.n_kv_heads * config.head_dim, config.include_bias
        self.attn_norm = RMSNorm(d, config.rms_norm_eps, bias)
        self.q_proj = nn.Linear(d, d, bias=bias)
        self.k_proj = nn.Linear(d, kv_dim, bias=bias)
        self.v_proj = nn.Linear(d, kv_dim, bias=bias)
        self.attn_out = nn.Linear(d, d, bias=bias)
        self.ff_norm = RMSNorm(d, config.rms_norm_eps, bias)
        self.ff_proj = nn.Linear(d, config.mlp_hidden_size, bias=bias)
        self.up_proj = nn.Linear(d, config.mlp_hidden_size, bias=bias)
        self.ff_out = nn.Linear(config.mlp_hidden_size, d, bias=bias)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        key_mask: Tensor | None,
        past: tuple[Tensor, Tensor] | None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Return the new hidden states and this layer's (past + new) keys/values."""
        batch, length, d_model = x.shape
        h = self.attn_norm(x)
        q = self.q_proj(h).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        group = self.n_heads // self.n_kv_heads
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        x = x + self.attn_out(att.transpose(1, 2).reshape(batch, length, d_model))
        h = self.ff_norm(x)
        x = x + self.ff_out(F.silu(self.ff_proj(h)) * self.up_proj(h))
        return x, present


class LLaDAModel(nn.Module):
    """LLaDA masked diffusion LM whose ``state_dict`` keys equal the reference ``LLaDAModelLM``'s.

    ``LLaDAModel(config)`` leaves PyTorch's default init; call :meth:`init_weights` for
    a seeded random model or use :meth:`from_pretrained` for a checkpoint.
    """

    def __init__(self, config: LLaDAConfig) -> None:
        super().__init__()
        self.config = config
        transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.embedding_size, config.d_model),
                "blocks": nn.ModuleList(LLaDABlock(config) for _ in range(config.n_layers)),
                "ln_f": RMSNorm(config.d_model, config.rms_norm_eps, config.include_bias),
            }
        )
        if not config.weight_tying:
            transformer["ff_out"] = nn.Linear(config.d_model, config.embedding_size, bias=config.include_bias)
        # The extra "model." level reproduces the reference's key prefix.
        self.model = nn.ModuleDict({"transformer": transformer})
        # fp32 cos/sin tables per device; plain attributes so `.to(dtype)` cannot round them.
        self._rope_tables: dict[torch.device, tuple[Tensor, Tensor]] = {}

    @property
    def transformer(self) -> nn.ModuleDict:
        return self.model.transformer

    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    @torch.no_grad()
    def init_weights(self, seed: int = 0) -> None:
        """Seeded init: N(0, 0.02) matrices, zero biases, unit norms; same on every device."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.modules():
            if isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
            elif isinstance(module, (nn.Linear, nn.Embedding)):
                noise = torch.empty(module.weight.shape).normal_(0.0, 0.02, generator=generator)
                module.weight.copy_(noise)
            if isinstance(module, (RMSNorm, nn.Linear)) and module.bias is not None:
                module.bias.zero_()

    def _rope_cos_sin(self, n_positions: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos/sin for positions [0, n) (at least max_sequence_length of them).

        Built on CPU in fp32 like the reference's table, then moved, so the angles are
        bitwise the same whatever device the model runs on.
        """
        cached = self._rope_tables.get(device)
        if cached is not None and cached[0].shape[0] >= n_positions:
            return cached
        n = max(n_positions, self.config.max_sequence_length)
        dim = self.config.head_dim
        inv_freq = 1.0 / (self.config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
        angles = torch.arange(n, dtype=torch.float32)[:, None] * inv_freq[None, :]
        angles = torch.cat((angles, angles), dim=-1)
        tables = (angles.cos().to(device), angles.sin().to(device))
        self._rope_tables[device] = tables
        return tables

    def forward(
        self,
        input_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        block_size: int | None = None,
    ) -> ModelOutput:
        """Logits for the new tokens, attending to cached and new tokens.

        ``attention_mask`` is a [B, L_past + L_new] key-padding mask (1 = real token), or a boolean
        [B, 1, L_new, L_past + L_new] mask of which key each query sees; ``position_ids`` are
        [B, L_new] absolute positions, by default continuing after the cache; ``past_key_values``
        holds per-layer (K after RoPE, V), each [B, n_kv_heads, L_past, head_dim]. ``block_size``
        None is LLaDA's full bidirectional attention; an int is block-diffusion attention (see
        :func:`block_attention_mask`), where a cache must hold whole blocks before the new tokens'.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        x = self.transformer.wte(input_ids) if inputs_embeds is None else inputs_embeds
        if x.dim() != 3 or x.shape[-1] != self.config.d_model:
            raise ValueError(f"expected input of shape [B, L, {self.config.d_model}], got {list(x.shape)}")
        if self.config.input_emb_norm:
            x = x * self.config.d_model**0.5
        batch, length = x.shape[:2]

        past_length = 0
        if past_key_values is not None:
            if len(past_key_values) != self.config.n_layers:
                raise ValueError(f"past_key_values has {len(past_key_values)} layers, model has {self.config.n_layers}")
            past_length = past_key_values[0][0].shape[2]

        if position_ids is None:
            position_ids = torch.arange(past_length, past_length + length, device=x.device)[None]
            n_positions = past_length + length
        else:
            if position_ids.dim() != 2 or position_ids.shape[0] not in (1, batch) or position_ids.shape[1] != length:
                raise ValueError(f"position_ids must be [{batch}, {length}], got {list(position_ids.shape)}")
            lowest, highest = torch.stack(position_ids.aminmax()).tolist()
            if lowest < 0:
                raise ValueError(f"position_ids must be >= 0, got {lowest}")
            n_positions = highest + 1
        cos, sin = self._rope_cos_sin(n_positions, x.device)
        cos, sin = cos[position_ids][:, None], sin[position_ids][:, None]
        key_mask = _attention_mask(attention_mask, batch, length, past_length, position_ids, block_size)

        presents = []
        for index, block in enumerate(self.transformer.blocks):
            past = None if past_key_values is None else past_key_values[index]
            x, present = block(x, cos, sin, key_mask, past)
            presents.append(present)

        x = self.transformer.ln_f(x)
        tied = self.config.weight_tying
        logits = F.linear(x, self.transformer.wte.weight) if tied else self.transformer.ff_out(x)
        return ModelOutput(logits=logits, past_key_values=tuple(presents) if use_cache else None)

    def save_pretrained(self, path: str | Path, max_shard_bytes: int | None = None) -> None:
        """Write ``config.json`` and ``model.safetensors`` loadable here and by the reference; with
        `max_shard_bytes`, weights larger than that go to numbered shards plus their index (the
        Hugging Face layout), e.g. for a transfer that caps each file's size. Stale weight files of the
        other layout are removed, so the directory always loads what was written last."""
        safetensors_torch = _import_safetensors()
        directory = Path(path)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n")
        tensors = {key: value.detach().contiguous() for key, value in self.state_dict().items()}
        shards = _shards(tensors, max_shard_bytes)
        stale = [directory / WEIGHTS_FILE, directory / SHARD_INDEX_FILE, *directory.glob("model-*-of-*.safetensors")]
        for file in stale:
            file.unlink(missing_ok=True)
        # transformers refuses safetensors files without the "format" metadata.
        if len(shards) == 1:
            safetensors_torch.save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
            return
        weight_map = {}
        for number, keys in enumerate(shards, start=1):
            name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
            safetensors_torch.save_file({k: tensors[k] for k in keys}, str(directory / name), metadata={"format": "pt"})
            weight_map |= dict.fromkeys(keys, name)
        total = sum(t.numel() * t.element_size() for t in tensors.values())
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (directory / SHARD_INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None) -> LLaDAModel:
        """Load a directory written by :meth:`save_pretrained` or a (sharded) LLaDA checkpoint.

        Weights keep their stored dtype unless ``dtype`` is given.
        """
        directory = Path(path)
        config = LLaDAConfig.from_dict(json.loads((directory / CONFIG_FILE).read_text()))
        state = _load_safetensors_state(directory)
        with torch.device("meta"):  # no throwaway random init
            model = cls(config)
        expected, found = set(model.state_dict()), set(state)
        if expected != found:
            raise ValueError(
                f"checkpoint {directory} does not match its config: "
                f"missing keys {sorted(expected - found)}, unexpected keys {sorted(found - expected)}"
            )
        model.load_state_dict(state, assign=True)
        return model if dtype is None else model.to(dtype)


def _import_safetensors() -> ModuleType:
    try:
        import safetensors.torch
    except ImportError as error:
        raise ImportError("saving/loading LLaDAModel checkpoints needs safetensors: pip install safetensors") from error
    return safetensors.torch


def _shards(tensors: dict[str, Tensor], max_bytes: int | None) -> list[list[str]]:
    """Keys in state-dict order, cut into runs of at most `max_bytes` (a larger tensor alone)."""
    if max_bytes is not None and (isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1):
        raise ValueError(f"max_shard_bytes must be a positive int or None, got {max_bytes!r}")
    shards: list[list[str]] = [[]]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if max_bytes is not None and shards[-1] and size + nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(key)
        size += nbytes
    return shards


def _load_safetensors_state(directory: Path) -> dict[str, Tensor]:
    safetensors_torch = _import_safetensors()
    index = directory / SHARD_INDEX_FILE
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (directory / WEIGHTS_FILE).exists():
        files = [WEIGHTS_FILE]
    else:
        raise FileNotFoundError(f"no {WEIGHTS_FILE} or {SHARD_INDEX_FILE} in {directory}")
    state: dict[str, Tensor] = {}
    for name in files:
        state.update(safetensors_torch.load_file(str(directory / name)))
    return state


def random_model_for(
    tokenizer: CharTokenizer | BPETokenizer,
    *,
    d_model: int,
    n_heads: int,
    n_layers: int,
    mlp_hidden_size: int,
    seed: int = 0,
    max_sequence_length: int = 512,
) -> LLaDAModel:
    """A seeded random LLaDA whose vocabulary and special ids are the tokenizer's."""
    config = LLaDAConfig(
        d_model=d_model,
        n_heads=n_heads,
        n_layers=n_layers,
        mlp_hidden_size=mlp_hidden_size,
        vocab_size=tokenizer.vocab_size,
        max_sequence_length=max_sequence_length,
        mask_token_id=tokenizer.mask_id,
        eos_token_id=tokenizer.eos_id,
        pad_token_id=tokenizer.pad_id,
    )
    model = LLaDAModel(config)
    model.init_weights(seed)
    return model


def build_default_random_model(seed: int = 0) -> tuple[LLaDAModel, CharTokenizer]:
    """A tiny LLaDA with RANDOM weights and a printable-ASCII char tokenizer.

    Its predictions are noise. It is a placeholder that gives samplers, demos and
    tests a real LLaDA-shaped network until a trained small model ships.
    """
    tokenizer = CharTokenizer.default()
    model = random_model_for(tokenizer, d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128, seed=seed)
    return model.eval(), tokenizer
