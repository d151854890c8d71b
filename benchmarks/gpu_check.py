"""LRD at LLaDA-8B dimensions on one GPU: step cost against the forward, and upstream Fast-dLLM's loops.

    python benchmarks/gpu_check.py --out DIR [--dims 8b|tiny] [--device cuda|cpu] [--budget-s 400]

Every figure elsewhere in the project comes from a 3.45 M-parameter model; this puts LRD's extra work
per step next to the forward of a model with LLaDA-8B's shapes (vocab 126 464, d_model 4 096, 32
layers, bf16), built in place with random weights (nothing is downloaded; only cost is measured, and
cost does not depend on the values). Two parts, one process, one JSON and one Markdown file:

(a) step cost. For a prefix-cache and a dual-cache block step (block 32; batch 1, 8, 32; context
    256, 1 024, 2 048, of which the answer is min(256, context / 2) and the measured block is its
    first): one cached forward, then on its logits an engine's plain threshold-0.9 step, the plugin's
    step with LRD's features off and LRD's default step (Phase 2 with a previous prediction, so KL,
    entropy, the early-stop test and the nucleus mixture all run). `extra / forward` is
    (LRD step - engine step) / forward. Peak memory above what was allocated before each call.
(b) upstream Fast-dLLM v1's own `generate_with_prefix_cache` and `generate_with_dual_cache` (its
    LLaDA model code, sharing the same weights) three ways: the engine alone, the plugin with LRD's
    features off, LRD's default: wall per forward and peak memory, and whether the plugin with LRD off
    decoded upstream's tokens with upstream's forward count. Needs transformers 4.x: the wheels and the
    link to Fast-dLLM that `benchmarks/gpu_check_wheels.sh` stages in `.gpu_check/` are used when
    present; without them part (b) is skipped with the reason and part (a) still runs.

On CUDA, times come from CUDA events after warm-up, and each step's host synchronisations are counted
with `torch.cuda.set_sync_debug_mode` (on the CPU, the Python-visible ones). `--budget-s` bounds the
whole run: repeats shrink at large shapes and settings that no longer fit are listed as skipped.
`--dims tiny` runs the same code on a tiny model, on the CPU in seconds (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from lrd_plugin import LRDConfig, LRDSampler  # noqa: E402
from lrd_plugin.mixture import log_probs  # noqa: E402
from lrd_plugin.models import LLaDAConfig, LLaDAModel  # noqa: E402
from lrd_plugin.models.llada import RMSNorm  # noqa: E402
from lrd_plugin.sampler import Phase  # noqa: E402

STAGE = REPO / ".gpu_check"
WHEELS = STAGE / "wheels"
FAST_DLLM_CANDIDATES = (STAGE / "fast-dllm", REPO.parent / "shared" / "upstream" / "fast-dllm" / "a9b81e4")
THRESHOLD = 0.9  # Fast-dLLM's threshold rule, the commit rule of every step measured here
OFF = {"lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False}
GIB = 2**30


@dataclass(frozen=True)
class Dims:
    """Model shape and the grid measured with it."""

    name: str
    model: dict[str, Any]  # LLaDAConfig fields
    dtype: torch.dtype
    block: int
    batches: tuple[int, ...]
    contexts: tuple[int, ...]
    answer_cap: int  # answer length at a context: min(answer_cap, context // 2)
    max_repeats: int
    slice_s: float  # time one measurement may take; fewer repeats at large shapes
    head_scale: float  # output-head scale: >1 makes a random model confident enough to commit several tokens
    loop_batch: int  # part (b): Fast-dLLM's evaluation decodes one prompt at a time
    loop_prompt: int
    loop_gen: int


DIMS = {
    "8b": Dims(
        name="8b",
        model={  # LLaDA-8B-Instruct's config.json
            "d_model": 4096,
            "n_heads": 32,
            "n_layers": 32,
            "mlp_hidden_size": 12288,
            "vocab_size": 126464,
            "embedding_size": 126464,
            "max_sequence_length": 4096,
            "rope_theta": 500000.0,
            "mask_token_id": 126336,
            "eos_token_id": 126081,
            "pad_token_id": 126081,
        },
        dtype=torch.bfloat16,
        block=32,
        batches=(1, 8, 32),
        contexts=(256, 1024, 2048),
        answer_cap=256,
        max_repeats=20,
        slice_s=1.5,
        head_scale=1.0,
        loop_batch=1,
        loop_prompt=256,
        loop_gen=64,
    ),
    "tiny": Dims(
        name="tiny",
        model={
            "d_model": 64,
            "n_heads": 4,
            "n_layers": 2,
            "mlp_hidden_size": 128,
            "vocab_size": 320,
            "max_sequence_length": 256,
            "mask_token_id": 300,
            "eos_token_id": 1,
            "pad_token_id": 0,
        },
        dtype=torch.float32,
        block=8,
        batches=(1, 2),
        contexts=(32, 64),
        answer_cap=16,
        max_repeats=5,
        slice_s=0.2,
        head_scale=40.0,
        loop_batch=1,
        loop_prompt=8,
        loop_gen=16,
    ),
}


# --- timing, memory, host synchronisations ------------------------------------------------------


class Budget:
    """Wall-clock guard for the whole run (the device call has a hard limit)."""

    def __init__(self, seconds: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_call(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """One call's time in ms and its result: CUDA events on a GPU (the stream's own clock, launch
    stalls included), wall clock elsewhere."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        sync(device)
        start.record()
        result = fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end), result
    begin = time.perf_counter()
    result = fn()
    return (time.perf_counter() - begin) * 1e3, result


def once_ms(fn: Callable[[], Any], device: torch.device) -> float:
    return timed_call(fn, device)[0]


def timed(fn: Callable[[], Any], device: torch.device, dims: Dims, budget: Budget) -> dict[str, float | int]:
    """Median of as many repeats as fit in `dims.slice_s` (3 to `max_repeats`), after one warm-up."""
    first = once_ms(fn, device)  # warm-up: allocator, kernels' first launch
    second = once_ms(fn, device)
    allowed = min(dims.slice_s, max(budget.left() / 20, 0.0)) * 1e3
    repeats = int(max(3, min(dims.max_repeats, allowed // max(second, 1e-3))))
    times = [second] + [once_ms(fn, device) for _ in range(repeats - 1)]
    return {"ms": statistics.median(times), "repeats": len(times), "warmup_ms": first}


def peak_gib(fn: Callable[[], Any], device: torch.device) -> float | None:
    """Peak memory a call allocates above what was allocated before it (None off CUDA)."""
    if device.type != "cuda":
        return None
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / GIB


class PythonSyncPoints(TorchFunctionMode):
    """The CPU's stand-in for CUDA's sync debug mode: counts the calls that would block the host on
    a GPU and that Python makes visible (``bool()``/``int()``/``float()`` of a tensor, ``.item()``,
    ``.tolist()``, ``nonzero``, boolean-mask indexing). Syncs inside C++ kernels are not seen."""

    NAMES = frozenset({"__bool__", "__int__", "__float__", "__index__", "item", "tolist", "nonzero"})

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if name in self.NAMES or (name in ("__getitem__", "__setitem__") and _bool_index(args)):
            self.count += 1
        return func(*args, **(kwargs or {}))


def _bool_index(args: tuple) -> bool:
    index = args[1] if len(args) > 1 else None
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, Tensor) and p.dtype == torch.bool for p in parts)


def host_syncs(fn: Callable[[], Any], device: torch.device) -> int | None:
    """How many times a call blocks the host on the device: each one stalls kernel launches and keeps
    the loop out of a CUDA graph. On CUDA every sync the sync debug mode reports; elsewhere the
    Python-visible ones (`PythonSyncPoints`)."""
    if device.type != "cuda":
        with PythonSyncPoints() as points:
            fn()
        return points.count
    sync(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            torch.cuda.set_sync_debug_mode("warn")
        except RuntimeError:  # not in this build: the timings matter more than this count
            return None
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def sync_counter_works(device: torch.device) -> bool:
    """Whether `host_syncs` sees a synchronisation that certainly happens (so 0 means none)."""
    probe = torch.ones(1, device=device)
    return bool(host_syncs(lambda: probe.item(), device))


# --- the model ----------------------------------------------------------------------------------


def build_model(dims: Dims, device: torch.device, seed: int = 0) -> LLaDAModel:
    """A random-weight LLaDAModel of `dims`, materialised directly on `device`: built on the meta
    device (no CPU copy, no default init), then drawn N(0, 0.02) in place by the device's own
    generator (seconds for 8 B parameters on a GPU). The mask token's output row is zero, so, as in a
    trained model, it is never the argmax (every other row's maximum logit is positive)."""
    config = LLaDAConfig(**dims.model)
    with torch.device("meta"):
        model = LLaDAModel(config)
    model = model.to(dtype=dims.dtype).to_empty(device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, RMSNorm):
                module.weight.fill_(1.0)
            elif isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                module.weight.normal_(0.0, 0.02, generator=generator)
            bias = getattr(module, "bias", None)
            if isinstance(bias, Tensor):
                bias.zero_()
        head = model.transformer.ff_out.weight
        head.mul_(dims.head_scale)
        head[config.mask_token_id].zero_()
    return model.eval()


def random_cache(model: LLaDAModel, batch: int, length: int, generator: torch.Generator) -> tuple:
    """Per-layer (K, V) of `length` cached positions: random values cost what real ones cost, without
    the full forward (and its [B, L, vocab] logits) that building them would take."""
    cfg = model.config
    weight = model.transformer.wte.weight
    shape = (batch, cfg.n_kv_heads, length, cfg.head_dim)

    def draw() -> Tensor:
        return torch.randn(shape, generator=generator, device=weight.device, dtype=weight.dtype)

    return tuple((draw(), draw()) for _ in range(cfg.n_layers))


# --- part (a): one block step -------------------------------------------------------------------


def engine_step(logits: Tensor, tokens: Tensor, mask_id: int, tau: float) -> tuple[Tensor, Tensor]:
    """What an engine's own threshold step does with a forward's logits, written plainly: fp32
    log-softmax without the mask token, argmax, and every open position with confidence >= tau
    plus the most confident one. Returns (tokens after the step, commit mask)."""
    scores = logits.to(torch.float32, copy=True)
    scores[..., mask_id] = -torch.inf
    logp = torch.log_softmax(scores, dim=-1)
    proposal = logp.argmax(dim=-1)
    confidence = logp.gather(-1, proposal.unsqueeze(-1)).squeeze(-1).exp()
    open_ = tokens == mask_id
    best = confidence.masked_fill(~open_, -torch.inf).argmax(dim=-1, keepdim=True)
    commit = (open_ & (confidence >= tau)) | torch.zeros_like(open_).scatter_(-1, best, True)
    commit &= open_
    return torch.where(commit, proposal, tokens), commit


@dataclass
class StepSetting:
    cache: str  # "prefix" or "dual"
    batch: int
    context: int
    block: int
    answer: int

    @property
    def prompt(self) -> int:
        return self.context - self.answer

    @property
    def query(self) -> int:
        """Positions one cached forward computes: block + rest of the answer, or the block alone."""
        return self.answer if self.cache == "prefix" else self.block

    @property
    def lrd_window(self) -> int:
        """LRD's default early stop covers the whole answer where the loop predicts it (prefix
        cache); the dual cache predicts only the block (the Fast-dLLM integration's default)."""
        return self.answer if self.cache == "prefix" else self.block


def settings(dims: Dims, batches: tuple[int, ...], contexts: tuple[int, ...]) -> list[StepSetting]:
    """Smallest work first, so a run cut short by the budget keeps the cheap settings."""
    out = [
        StepSetting(cache, batch, context, dims.block, min(dims.answer_cap, context // 2))
        for batch in batches
        for context in contexts
        for cache in ("prefix", "dual")
    ]
    return sorted(out, key=lambda s: (s.batch * s.context, s.cache))


def measure_forward(
    model: LLaDAModel, dims: Dims, s: StepSetting, budget: Budget, tokens: Tensor, seed: int = 0
) -> tuple[dict[str, Any], Tensor]:
    """Time one cached forward of the block step; returns its numbers and its logits. The cache
    lives only in here, so it is freed before the steps are measured."""
    device = tokens.device
    generator = torch.Generator(device=device).manual_seed(seed)
    if s.cache == "prefix":  # cache: the prompt; query: block + rest of the answer at their positions
        cache = random_cache(model, s.batch, s.prompt, generator)
        embeds, position_ids = model.get_input_embeddings()(tokens), None
    else:  # cache: prompt + rest of the answer; query: the block, at its own positions
        cache = random_cache(model, s.batch, s.context - s.block, generator)
        embeds = model.get_input_embeddings()(tokens[:, : s.block])
        position_ids = torch.arange(s.prompt, s.prompt + s.block, device=device)[None]

    def forward() -> Tensor:
        return model(inputs_embeds=embeds, past_key_values=cache, position_ids=position_ids).logits

    with torch.no_grad():
        numbers = {
            "forward": timed(forward, device, dims, budget),
            "forward_peak_gib": peak_gib(forward, device),
            "forward_syncs": host_syncs(forward, device),
            "kv_cache_gib": sum(t.numel() * t.element_size() for layer in cache for t in layer) / GIB,
        }
        return numbers, forward()


def measure_step(model: LLaDAModel, dims: Dims, s: StepSetting, budget: Budget, seed: int = 0) -> dict[str, Any]:
    """One row of part (a): forward, engine step, plugin step with LRD off, LRD step."""
    device = model.transformer.wte.weight.device
    mask_id = model.config.mask_token_id
    table = model.get_input_embeddings().weight
    row: dict[str, Any] = {"cache": s.cache, "batch": s.batch, "context": s.context, "prompt": s.prompt}
    row |= {"answer": s.answer, "block": s.block, "query": s.query, "lrd_window": s.lrd_window}
    # The first block of the answer, every answer position still masked.
    tokens = torch.full((s.batch, s.answer), mask_id, dtype=torch.long, device=device)
    numbers, logits = measure_forward(model, dims, s, budget, tokens, seed)
    row |= numbers

    block_logits = logits[:, : s.block]
    window_logits = logits[:, : s.lrd_window]
    block_tokens, window_tokens = tokens[:, : s.block], tokens[:, : s.lrd_window]
    scope = "sequence" if s.lrd_window > s.block else "block"
    off = LRDSampler(LRDConfig.base(policy="threshold", threshold=THRESHOLD), table, mask_id)
    lrd = LRDSampler(LRDConfig(policy="threshold", threshold=THRESHOLD, early_stop_scope=scope), table, mask_id)
    # A previous prediction that differs from this one, so the KL is not trivially zero.
    previous = log_probs(window_logits.roll(1, dims=-1), mask_id)

    def engine() -> Tensor:
        return engine_step(block_logits, block_tokens, mask_id, THRESHOLD)[0]

    def plugin_off() -> Tensor:
        state = off.init_block(block_tokens, s.block)
        off.step(state, block_logits)
        return state.tokens

    def lrd_step() -> Tensor:
        state = lrd.init_block(window_tokens, s.block)
        state.phase.fill_(int(Phase.DECODE))
        state.prev_logp = previous
        lrd.step(state, window_logits)
        return state.tokens

    with torch.no_grad():
        for name, fn in (("engine_step", engine), ("off_step", plugin_off), ("lrd_step", lrd_step)):
            row[name] = timed(fn, device, dims, budget)
            row[f"{name}_peak_gib"] = peak_gib(fn, device)
            row[f"{name}_syncs"] = host_syncs(fn, device)
        expected, committed = engine_step(block_logits, block_tokens, mask_id, THRESHOLD)
        row["engine_commits"] = int(committed.sum())
        row["off_matches_engine"] = bool(torch.equal(plugin_off(), expected))
    # What LRD keeps between steps: the previous fp32 prediction over its window, and the mixtures.
    mixtures = s.batch * s.block * model.config.d_model * table.element_size()
    row["lrd_state_gib"] = (previous.numel() * 4 + mixtures) / GIB
    forward_ms = row["forward"]["ms"]
    row["extra_over_forward"] = (row["lrd_step"]["ms"] - row["engine_step"]["ms"]) / forward_ms
    row["off_over_forward"] = (row["off_step"]["ms"] - row["engine_step"]["ms"]) / forward_ms
    # lrd_plugin.stepcost's definition (its base step is the plugin with LRD off), for comparison
    row["lrd_minus_off_over_forward"] = (row["lrd_step"]["ms"] - row["off_step"]["ms"]) / forward_ms
    return row


def run_step_costs(
    model: LLaDAModel,
    dims: Dims,
    budget: Budget,
    *,
    until: float,
    batches: tuple[int, ...] | None = None,
    contexts: tuple[int, ...] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Part (a) over the grid; a setting that would start after `until` seconds of the budget, or
    whose predecessor took longer than what is left, is recorded as skipped."""
    device = model.transformer.wte.weight.device
    rows: list[dict[str, Any]] = []
    last_s = 0.0
    for s in settings(dims, batches or dims.batches, contexts or dims.contexts):
        if budget.elapsed() + 2 * last_s > until:
            rows.append({"cache": s.cache, "batch": s.batch, "context": s.context, "skipped": "time budget"})
            continue
        begin = time.monotonic()
        try:
            row = measure_step(model, dims, s, budget)
        except Exception as error:  # one call on the GPU: a failing setting must not cost the others
            row = {"cache": s.cache, "batch": s.batch, "context": s.context}
            row["skipped"] = f"failed: {type(error).__name__}: {str(error)[:300]}"
        if device.type == "cuda":
            torch.cuda.empty_cache()
        last_s = time.monotonic() - begin
        row["seconds"] = last_s
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return rows


# --- part (b): upstream Fast-dLLM's loops -------------------------------------------------------


def use_wheels(folder: Path) -> str | None:
    """Install the carried wheels offline into a folder first on sys.path (once per set of wheels);
    returns why not, or None. Must run before anything imports transformers."""
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        return f"no wheels in {folder} (run benchmarks/gpu_check_wheels.sh where pip can download)"
    if "transformers" in sys.modules:
        return "transformers is already imported in this process; run part (b) in a fresh one"
    key = hashlib.sha256(" ".join(f"{w.name}:{w.stat().st_size}" for w in wheels).encode()).hexdigest()[:12]
    target = Path(os.environ.get("TMPDIR", "/tmp")) / f"lrd_gpu_check_site_{key}"
    if not (target / ".complete").exists():
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
        command += ["--disable-pip-version-check", "--upgrade", "--target", str(target), *map(str, wheels)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            return f"offline install of {folder} failed: {done.stderr.strip()[-500:]}"
        (target / ".complete").touch()
    sys.path.insert(0, str(target))
    return None


def find_llada_dir(root: Path | None) -> Path | None:
    for candidate in (root,) if root is not None else FAST_DLLM_CANDIDATES:
        if candidate is not None and (candidate / "v1" / "llada" / "generate.py").is_file():
            return candidate / "v1" / "llada"
    return None


@dataclass
class Upstream:
    """Fast-dLLM's generate module with the engine's own functions kept aside, and its model module."""

    generate: ModuleType
    modeling: ModuleType
    configuration: ModuleType
    original: dict[str, Callable[..., Any]] = field(default_factory=dict)


def load_upstream(llada_dir: Path) -> Upstream:
    """Import Fast-dLLM's LLaDA code (torch.compile off: upstream wraps SDPA in it, which would
    recompile per shape inside a timed run; the three variants share that choice), keep its
    original loops, then switch them to accept sampler="lrd"."""
    os.environ["TORCH_COMPILE_DISABLE"] = os.environ["TORCHDYNAMO_DISABLE"] = "1"  # decorator: a no-op
    import torch._dynamo

    torch._dynamo.config.disable = True
    from lrd_plugin.integrations.fast_dllm import llada
    from lrd_plugin.integrations.fast_dllm.layout import flat_imports

    with flat_imports(llada_dir):
        generate = importlib.import_module("generate")
        modeling = importlib.import_module("model.modeling_llada")
        configuration = importlib.import_module("model.configuration_llada")
    upstream = Upstream(generate, modeling, configuration)
    upstream.original = {name: getattr(generate, name) for name in llada.FUNCTIONS}
    llada.install(generate)
    return upstream


def upstream_model(upstream: Upstream, model: LLaDAModel) -> Any:
    """Upstream's LLaDAModelLM over `model`'s own tensors (same keys, no copy): built on the meta
    device, then the parameters are assigned."""
    cfg = model.config
    config = upstream.configuration.LLaDAConfig(
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        n_kv_heads=cfg.n_kv_heads,
        n_layers=cfg.n_layers,
        mlp_hidden_size=cfg.mlp_hidden_size,
        vocab_size=cfg.vocab_size,
        embedding_size=cfg.embedding_size,
        max_sequence_length=cfg.max_sequence_length,
        rope_theta=cfg.rope_theta,
        mask_token_id=cfg.mask_token_id,
        activation_type="silu",
        block_type="llama",
        layer_norm_type="rms",
        rms_norm_eps=cfg.rms_norm_eps,
        rope=True,
        weight_tying=False,
        include_bias=False,
        attention_dropout=0.0,
        residual_dropout=0.0,
        embedding_dropout=0.0,
    )
    inner_config = upstream.modeling.create_model_config_from_pretrained_config(config)
    inner_config.init_device = "meta"
    inner = upstream.modeling.LLaDAModel(inner_config, init_params=False)
    wrapped = upstream.modeling.LLaDAModelLM(config, model=inner)
    wrapped.load_state_dict(model.state_dict(), assign=True)
    return wrapped.eval()


def run_upstream_loops(
    model: LLaDAModel, dims: Dims, budget: Budget, llada_dir: Path, *, seed: int = 0
) -> dict[str, Any]:
    """Part (b): each loop's three variants, interleaved per repeat so that drift hits all alike."""
    device = model.transformer.wte.weight.device
    upstream = load_upstream(llada_dir)
    theirs = upstream_model(upstream, model)
    mask_id = model.config.mask_token_id
    generator = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, mask_id, (dims.loop_batch, dims.loop_prompt), generator=generator).to(device)
    args = {
        "steps": dims.loop_gen,
        "gen_length": dims.loop_gen,
        "block_length": dims.block,
        "threshold": THRESHOLD,
        "mask_id": mask_id,
    }
    import transformers

    out: dict[str, Any] = {
        "fast_dllm": str(llada_dir),
        "transformers": transformers.__version__,
        "batch": dims.loop_batch,
        "prompt": dims.loop_prompt,
        "gen_length": dims.loop_gen,
        "block_length": dims.block,
        "threshold": THRESHOLD,
        "torch_compile": "disabled (TORCHDYNAMO_DISABLE=1) for all three variants",
        "loops": [],
    }
    functions = ("generate_with_prefix_cache", "generate_with_dual_cache")
    for index, name in enumerate(functions):
        loop_until = time.monotonic() + (budget.left() - 15) / (len(functions) - index)
        variants: dict[str, Callable[[], tuple[Tensor, int]]] = {
            "engine": lambda name=name: upstream.original[name](theirs, prompt, **args),
            "plugin_lrd_off": lambda name=name: getattr(upstream.generate, name)(
                theirs, prompt, sampler="lrd", **OFF, **args
            ),
            "lrd_default": lambda name=name: getattr(upstream.generate, name)(theirs, prompt, sampler="lrd", **args),
        }
        loop: dict[str, Any] = {"function": name, "variants": {}}
        runs: dict[str, list[float]] = {key: [] for key in variants}
        results: dict[str, tuple[Tensor, int]] = {}
        with torch.no_grad():
            for key, fn in variants.items():  # warm-up and outputs, then memory and host syncs
                results[key] = fn()
                loop["variants"][key] = {
                    "nfe": int(results[key][1]),
                    "peak_gib": peak_gib(fn, device),
                    "syncs": host_syncs(fn, device),
                }
            for _ in range(dims.max_repeats):  # interleaved, so drift hits every variant alike
                round_start = time.monotonic()
                for key, fn in variants.items():
                    ms, (_, nfe) = timed_call(fn, device)
                    runs[key].append(ms / nfe)
                if time.monotonic() + 1.5 * (time.monotonic() - round_start) > loop_until:
                    break
        for key, per_forward in runs.items():
            info = loop["variants"][key]
            info["ms_per_forward"] = statistics.median(per_forward)
            info["repeats"] = len(per_forward)
            syncs = info["syncs"]
            info["syncs_per_forward"] = None if syncs is None else syncs / info["nfe"]
        engine_x, engine_nfe = results["engine"]
        off_x, off_nfe = results["plugin_lrd_off"]
        loop["off_matches_engine"] = bool(torch.equal(engine_x, off_x)) and engine_nfe == off_nfe
        loop["lrd_leaves_no_mask"] = not bool((results["lrd_default"][0] == mask_id).any())
        base = loop["variants"]["engine"]["ms_per_forward"]
        for key in ("plugin_lrd_off", "lrd_default"):
            loop["variants"][key]["over_engine"] = loop["variants"][key]["ms_per_forward"] / base - 1
        out["loops"].append(loop)
    return out


# --- output -------------------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"# gpu_check: {meta['dims']} dims on {meta['device_name']}",
        "",
        f"`{meta['command']}`; torch {meta['torch']}, {meta['dtype']}, "
        f"{_count(meta['parameters'])} parameters (random), built in {meta['build_s']:.1f} s; "
        f"run {meta.get('total_s', 0):.0f} s of a {meta['budget_s']:.0f} s budget.",
        "",
        "## (a) One block step: cached forward against LRD's extra work (threshold 0.9)",
        "",
        "Engine: a plain threshold step on the block's logits. Off: the plugin's step with LRD's features off. "
        "LRD: the default step (Phase 2; KL, entropy, early-stop test, nucleus mixture) over its window "
        "(the whole answer with the prefix cache, the block with the dual cache). "
        "extra = (LRD - engine) / forward. Peaks are GiB above what was allocated before the call; "
        "syncs are host synchronisations per call (on a GPU every one CUDA's sync debug mode reports; on "
        "the CPU the Python-visible ones).",
        "",
        "| cache | batch | context | query | forward ms | engine ms | off ms | LRD ms | extra / fwd | off / fwd "
        "| fwd peak | LRD peak | LRD state | syncs fwd / off / LRD | off = engine |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in report["step_cost"]:
        if "skipped" in r:
            lines.append(f"| {r['cache']} | {r['batch']} | {r['context']} | skipped: {r['skipped']} |")
            continue
        syncs = " / ".join(_fmt(r[k]) for k in ("forward_syncs", "off_step_syncs", "lrd_step_syncs"))
        lines.append(
            f"| {r['cache']} | {r['batch']} | {r['context']} | {r['query']} | {r['forward']['ms']:.3f} | "
            f"{r['engine_step']['ms']:.3f} | {r['off_step']['ms']:.3f} | {r['lrd_step']['ms']:.3f} | "
            f"{r['extra_over_forward']:.2%} | {r['off_over_forward']:.2%} | {_fmt(r['forward_peak_gib'])} | "
            f"{_fmt(r['lrd_step_peak_gib'])} | {r['lrd_state_gib']:.3f} | {syncs} | {r['off_matches_engine']} |"
        )
    lines += ["", "## (b) Upstream Fast-dLLM v1's LLaDA loops", ""]
    up = report["upstream"]
    if "skipped" in up:
        lines.append(f"Skipped: {up['skipped']}")
    elif "loops" not in up:
        lines.append("Not run yet (it runs after part (a)).")
    else:
        lines += [
            f"Batch {up['batch']}, prompt {up['prompt']}, gen {up['gen_length']}, block {up['block_length']}, "
            f"threshold {up['threshold']}; transformers {up['transformers']}; torch.compile {up['torch_compile']}.",
            "",
            "| loop | variant | NFE | ms / forward | vs engine | peak GiB | syncs / forward | repeats |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for loop in up["loops"]:
            for key, v in loop["variants"].items():
                vs = "" if key == "engine" else f"{v['over_engine']:+.1%}"
                lines.append(
                    f"| {loop['function']} | {key} | {v['nfe']} | {v['ms_per_forward']:.3f} | {vs} | "
                    f"{_fmt(v['peak_gib'])} | {_fmt(v['syncs_per_forward'])} | {v['repeats']} |"
                )
        checks = [f"{loop['function']}: {loop['off_matches_engine']}" for loop in up["loops"]]
        lines += ["", "Plugin with LRD off decodes upstream's tokens with upstream's NFE: " + ", ".join(checks)]
    lines += ["", "## Issue 20's targets", "", *targets(report)]
    return "\n".join(lines) + "\n"


def targets(report: dict[str, Any]) -> list[str]:
    """The issue's two numbers: LRD's extra work <= 2 % of the forward in every setting, and the
    plugin with LRD off within 3 % of upstream's wall per forward."""
    measured = [r for r in report["step_cost"] if "skipped" not in r]
    lines = []
    if measured:
        worst = max(measured, key=lambda r: r["extra_over_forward"])
        over = [r for r in measured if r["extra_over_forward"] > 0.02]
        lines.append(
            f"- LRD extra / forward: at most {worst['extra_over_forward']:.2%} ({worst['cache']}, batch "
            f"{worst['batch']}, context {worst['context']}); {len(over)} of {len(measured)} settings above 2 %."
        )
    loops = report["upstream"].get("loops", [])
    for loop in loops:
        over = loop["variants"]["plugin_lrd_off"]["over_engine"]
        verdict = "meets" if over <= 0.03 else "misses"
        lines.append(f"- {loop['function']}: plugin with LRD off {over:+.1%} per forward ({verdict} <= +3 %).")
    return lines or ["- nothing measured"]


def _count(n: int) -> str:
    return f"{n / 1e9:.2f} B" if n >= 1e8 else f"{n / 1e6:.2f} M"


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.2f}"


def write(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(report))


# --- the command --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--dims", choices=list(DIMS), default="8b")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget-s", type=float, default=None, help="whole-run guard (default 400 s; tiny 60 s)")
    parser.add_argument("--batches", type=int, nargs="*", default=None, help="override the grid's batches")
    parser.add_argument("--contexts", type=int, nargs="*", default=None, help="override the grid's contexts")
    parser.add_argument("--parts", choices=["a", "b"], nargs="*", default=["a", "b"])
    parser.add_argument("--wheels", type=Path, default=WHEELS, help="transformers 4.x wheels for part (b)")
    parser.add_argument("--fast-dllm", type=Path, default=None, help="a Fast-dLLM checkout (v1 layout)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    dims = DIMS[args.dims]
    budget = Budget(args.budget_s if args.budget_s is not None else (400.0 if dims.name == "8b" else 60.0))
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device here (use --device cpu with --dims tiny)")
    # Part (b)'s transformers 4.x must be importable before anything imports transformers.
    llada_dir, why_not = None, None
    if "b" in args.parts:
        llada_dir = find_llada_dir(args.fast_dllm)
        if llada_dir is None:
            why_not = "no Fast-dLLM v1 checkout (run benchmarks/gpu_check_wheels.sh, or pass --fast-dllm)"
        else:
            why_not = use_wheels(args.wheels) if _transformers_major() != 4 else None
    else:
        why_not = "not requested (--parts)"

    begin = time.monotonic()
    model = build_model(dims, device, args.seed)
    sync(device)
    report: dict[str, Any] = {
        "meta": {
            "dims": dims.name,
            "command": "python benchmarks/gpu_check.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
            "torch": torch.__version__,
            "dtype": str(dims.dtype).removeprefix("torch."),
            "model": {**dims.model, "block": dims.block},
            "parameters": sum(p.numel() for p in model.parameters()),
            "weights_gib": sum(p.numel() * p.element_size() for p in model.parameters()) / GIB,
            "build_s": time.monotonic() - begin,
            "budget_s": budget.deadline - budget.start,
            "threshold": THRESHOLD,
            "sync_counter": "CUDA sync debug mode" if device.type == "cuda" else "Python-visible sync points",
            "sync_counter_works": sync_counter_works(device),
        },
        "step_cost": [],
        "upstream": {"skipped": why_not} if why_not else {"pending": "runs after part (a)"},
    }
    print(f"built {_count(report['meta']['parameters'])} parameters in {report['meta']['build_s']:.1f} s", flush=True)

    def progress(row: dict[str, Any]) -> None:
        report["step_cost"].append(row)
        write(report, args.out)
        if "skipped" not in row:
            print(
                f"(a) {row['cache']:6} batch {row['batch']:2} context {row['context']:4}: forward "
                f"{row['forward']['ms']:.3f} ms, LRD extra {row['extra_over_forward']:.2%}, "
                f"off = engine {row['off_matches_engine']} ({row['seconds']:.1f} s)",
                flush=True,
            )

    if "a" in args.parts:
        share = 0.55 if not why_not else 0.95
        rows = run_step_costs(
            model,
            dims,
            budget,
            until=share * (budget.deadline - budget.start),
            batches=tuple(args.batches) if args.batches else None,
            contexts=tuple(args.contexts) if args.contexts else None,
            on_row=progress,
        )
        report["step_cost"] = rows
    if not why_not:
        try:
            report["upstream"] = run_upstream_loops(model, dims, budget, llada_dir, seed=args.seed)  # type: ignore[arg-type]
        except Exception as error:  # part (a)'s results must survive an upstream failure
            report["upstream"] = {"skipped": f"failed: {type(error).__name__}: {error}"}
    report["meta"]["total_s"] = budget.elapsed()
    write(report, args.out)
    print(markdown(report), flush=True)
    return report


def _cpu_name() -> str:
    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def _transformers_major() -> int | None:
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        return int(version("transformers").split(".")[0])
    return None


if __name__ == "__main__":
    main()
