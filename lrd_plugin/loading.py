"""Load a model directory (or the embedded default) as a `Denoiser` plus a text codec."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .adapters import Denoiser, HFDenoiser

DEFAULT_MODEL = "default"
DEFAULT_DIR = Path(__file__).parent / "default_model"  # the trained embedded default, when shipped
CODE_MODEL = "code"
CODE_DIR = Path(__file__).parent / "code_model"  # the embedded code model (CPython's stdlib), when shipped
CODE_TRAIN_COMMAND = "python benchmarks/train_code_llada.py --out lrd_plugin/code_model"


@dataclass
class LoadedModel:
    denoiser: Denoiser
    tokenizer: Any  # encode(text) -> list[int], decode(ids) -> str
    pad_id: int
    description: str
    random_weights: bool = False
    device: str = "cpu"
    trained_tasks: tuple[str, ...] | None = None  # the suite tasks in its training mix, when it says

    def encode(self, text: str) -> list[int]:
        if hasattr(self.tokenizer, "mask_id"):  # the project's CharTokenizer or BPETokenizer
            return self.tokenizer.encode(text)
        return self.tokenizer(text)["input_ids"]

    def encode_batch(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded token ids [B, L] and their attention mask (1 = real token)."""
        rows = [self.encode(p) for p in prompts]
        width = max(len(r) for r in rows)
        ids = torch.tensor([[self.pad_id] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        return ids, mask

    def decode(self, ids: list[int]) -> str:
        """The answer text: generated ids up to the first EOS. What a parallel sampler commits after
        the EOS is not part of the answer (it would otherwise be scored as if it were)."""
        eos = getattr(self.tokenizer, "eos_id", getattr(self.tokenizer, "eos_token_id", None))
        if eos is not None and eos in ids:
            ids = ids[: ids.index(eos)]
        if hasattr(self.tokenizer, "mask_id"):
            return self.tokenizer.decode(ids)
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def load_model(
    spec: str, *, device: str = "cpu", dtype: str | None = None, seed: int = 0, block_size: int | None = None
) -> LoadedModel:
    """`default` (the embedded default), `code` (the embedded code model, trained on CPython's
    standard library), a LLaDA-format directory of this project (config.json with model_type
    'llada', model.safetensors, tokenizer.json) or a local transformers *ForMaskedLM directory.
    Nothing is downloaded. ``block_size`` runs a LLaDA-format model in block-diffusion attention
    (None: full attention)."""
    from .models import LLaDAModel, build_default_random_model, load_tokenizer

    torch_dtype = _dtype(dtype)
    if spec == DEFAULT_MODEL and (DEFAULT_DIR / "config.json").is_file():
        loaded = load_model(str(DEFAULT_DIR), device=device, dtype=dtype, block_size=block_size)
        loaded.description = "embedded default: tiny LLaDA trained on the task suite (lrd_plugin/default_model)"
        return loaded
    if spec == DEFAULT_MODEL:
        model, tok = build_default_random_model(seed)
        model = model.to(device=device, dtype=torch_dtype or torch.float32)
        return LoadedModel(
            HFDenoiser(model, tok.mask_id, block_size=block_size),
            tok,
            tok.pad_id,
            "embedded default: tiny LLaDA with RANDOM weights (placeholder, outputs are noise)",
            random_weights=True,
            device=device,
        )
    if spec == CODE_MODEL:
        if not (CODE_DIR / "config.json").is_file():
            raise FileNotFoundError(
                f"the code model is not shipped yet (no {CODE_DIR}/config.json); train it with "
                f"`{CODE_TRAIN_COMMAND}` (needs the [code] extra; add --no-bf16 on a CPU)"
            )
        loaded = load_model(str(CODE_DIR), device=device, dtype=dtype, block_size=block_size)
        loaded.description = "embedded code model: small LLaDA trained on CPython's stdlib (lrd_plugin/code_model)"
        return loaded
    path = Path(spec)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"--model must be 'default' or a directory with a config.json (or 'code', the embedded code model); "
            f"got {spec!r}"
        )
    config = json.loads((path / "config.json").read_text())
    if config.get("model_type") == "llada":
        model = LLaDAModel.from_pretrained(path, dtype=torch_dtype).to(device).eval()
        tok = load_tokenizer(path)  # character or byte-level BPE, as tokenizer.json says
        denoiser = HFDenoiser(model, model.config.mask_token_id, block_size=block_size)
        description = f"LLaDA-format model {path}"
        return LoadedModel(denoiser, tok, tok.pad_id, description, device=device, trained_tasks=trained_tasks(path))
    if block_size is not None:
        raise ValueError(f"attention 'block' needs a LLaDA-format model of this project; {spec!r} is not one")
    return _load_transformers(path, device, torch_dtype)


def _load_transformers(path: Path, device: str, dtype: torch.dtype | None) -> LoadedModel:
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(
            "loading a transformers checkpoint needs the [hf] extra: pip install 'lrd-plugin[hf]'"
        ) from exc
    tok = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.mask_token_id is None:
        raise ValueError(f"the tokenizer in {path} has no mask token; LRD needs a masked LM")
    model = transformers.AutoModelForMaskedLM.from_pretrained(path, local_files_only=True, torch_dtype=dtype)
    model = model.to(device).eval()
    offset = (
        getattr(model.config, "pad_token_id", 0) + 1 if model.config.model_type in ("roberta", "xlm-roberta") else 0
    )
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    denoiser = HFDenoiser(model, tok.mask_token_id, position_offset=offset)
    return LoadedModel(denoiser, tok, pad, f"masked LM {path}", device=device)


def learnt_tasks(suite: Sequence[str], trained: Sequence[str] | None) -> list[str]:
    """The tasks of `suite` a model was trained on, in the suite's order (all of them when unknown)."""
    return [t for t in suite if t in (trained or suite)]


def trained_tasks(path: Path) -> tuple[str, ...] | None:
    """The tasks of the training mix in ``train_log.json`` (written by the training scripts), so that a
    benchmark defaults to what the model learnt rather than to tasks added to the suite after it."""
    log = path / "train_log.json"
    if not log.is_file():
        return None
    mix = json.loads(log.read_text()).get("args", {}).get("task_mix")
    if not isinstance(mix, str):
        return None
    return tuple(item.split(":")[0] for item in mix.split(","))


def _dtype(name: str | None) -> torch.dtype | None:
    allowed = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if name is None:
        return None
    if name not in allowed:
        raise ValueError(f"dtype must be one of {sorted(allowed)}, got {name!r}")
    return allowed[name]
