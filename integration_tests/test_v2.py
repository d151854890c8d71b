"""Fast-dLLM v2's ``batch_sample`` (the pinned ``v2/generation_functions.py``) with ``sampler="lrd"``.

v2's model code ships with its checkpoint, so these tests run upstream's own ``batch_sample`` on
`V2BlockModel`, a random-weight model of ours that speaks v2's forward protocol. With LRD's features
off the switched function must be upstream's, token for token and forward for forward (every forward's
arguments compared); with them on it must decode every position, with valid tokens, honouring stop
tokens; bad settings are refused with the parameter named.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from torch import Tensor

from lrd_plugin.integrations.fast_dllm import v2
from lrd_plugin.integrations.fast_dllm.layout import ENV_VAR, Layout, import_flat
from lrd_plugin.integrations.fast_dllm.v2_model import V2BlockModel, V2Cache, random_v2_model

VOCAB, MASK, PAD, STOP = 64, 63, 62, 61
TOKENIZER = SimpleNamespace(pad_token_id=PAD)  # batch_sample reads only pad_token_id from it
FEATURES_OFF = {"lrd_refinement": False, "lrd_mixing": False, "lrd_early_stop": False}
SHORT = [5, 21, 13]  # every prompt shorter than a block of 32: no prefix cache before the first block
LONG = [40, 75, 50]  # longer than a block: the first block is cached first; one prompt spans three blocks
ALIGNED = [64, 70]  # the shortest ends at a block boundary: the cache forward gives its next token


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models on a busy 2-core machine: OpenMP threads waiting on each other cost ~100x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def load_generation_functions(root: Path) -> ModuleType:
    """The checkout's ``v2/generation_functions.py``, imported by path (a fresh module object)."""
    path = root / "v2" / "generation_functions.py"
    if not path.is_file():
        pytest.skip(f"{root} has no v2/generation_functions.py (Fast-dLLM v2 arrived with a9b81e4)")
    name = f"_fast_dllm_v2_generation_functions_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # transformers' auto_docstring looks the class's module up
    spec.loader.exec_module(module)
    return module


class Upstream:
    """Upstream's ``batch_sample`` before switching, and the same module's function after `v2.install`."""

    def __init__(self, module: ModuleType) -> None:
        self.original = vars(module.Fast_dLLM_QwenForCausalLM)["batch_sample"]
        v2.install(module)
        self.switched = vars(module.Fast_dLLM_QwenForCausalLM)["batch_sample"]


@pytest.fixture(scope="module")
def upstream(layout: Layout) -> Upstream:
    return Upstream(load_generation_functions(layout.root))


def tiny_model(seed: int = 1, sharpness: float = 120.0) -> V2BlockModel:
    """Confidences spread over 0.5 .. 0.999: both thresholds commit several tokens per step, differently."""
    return random_v2_model(VOCAB, MASK, seed=seed, sharpness=sharpness)


def prompts(lengths: list[int], seed: int = 0) -> tuple[Tensor, Tensor]:
    """Right-padded with the mask id, as v2's eval.py builds a batch."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), max(lengths)), MASK)
    for row, length in enumerate(lengths):
        ids[row, :length] = torch.randint(0, 60, (length,), generator=generator)
    return ids, torch.tensor(lengths)


def _summary(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, V2Cache):
        return ("cache", len(value), value.get_seq_length(), value.key_cache[0].shape[0] if len(value) else 0)
    return value


class Recorder:
    """Every forward's arguments (tensors as values, caches as their shape), in call order. Upstream
    calls ``self.forward`` directly, so the recorder replaces the instance's ``forward``."""

    def __init__(self, model: V2BlockModel) -> None:
        self.calls: list[dict[str, Any]] = []
        self.hooked: list[bool] = []  # an embedding hook (a mixture) was in place
        inner = model.forward
        embedding = model.get_input_embeddings()

        def forward(**kwargs: Any) -> Any:
            self.calls.append({key: _summary(value) for key, value in kwargs.items()})
            self.hooked.append(bool(embedding._forward_hooks))
            return inner(**kwargs)

        model.forward = forward  # type: ignore[method-assign]

    def take(self) -> list[dict[str, Any]]:
        calls, self.calls = self.calls, []
        self.hooked = []
        return calls


def run(function: Callable[..., Any], model: V2BlockModel, lengths: list[int], **kwargs: Any) -> dict[int, Tensor]:
    return run_ids(function, model, prompts(lengths)[0], lengths, **kwargs)


def run_ids(
    function: Callable[..., Any], model: V2BlockModel, ids: Tensor, lengths: list[int], **kwargs: Any
) -> dict[int, Tensor]:
    seq_len = torch.tensor(lengths)
    args = {
        "tokenizer": TOKENIZER,
        "block_size": 32,
        "max_new_tokens": 64,
        "small_block_size": 8,
        "min_len": min(lengths),
        "seq_len": seq_len,
        "mask_id": MASK,
        "stop_token": STOP,
        **kwargs,
    }
    return function(model, ids, **args)


def assert_same(expected: dict[int, Tensor], ours: dict[int, Tensor]) -> None:
    assert sorted(ours) == sorted(expected)
    for request in expected:
        assert torch.equal(ours[request], expected[request]), request


@pytest.mark.parametrize("lengths", [SHORT, LONG, ALIGNED], ids=["short", "long", "aligned"])
@pytest.mark.parametrize("small_block_size", [8, 32])
@pytest.mark.parametrize("use_block_cache", [False, True])
@pytest.mark.parametrize("threshold", [0.9, 0.95])
def test_features_off_is_upstream(
    upstream: Upstream, lengths: list[int], small_block_size: int, use_block_cache: bool, threshold: float
) -> None:
    model = tiny_model()
    recorder = Recorder(model)
    settings = {"small_block_size": small_block_size, "use_block_cache": use_block_cache, "threshold": threshold}
    expected = run(upstream.original, model, lengths, **settings)
    expected_calls = recorder.take()
    for sampler in (None, "default"):  # the switch without LRD is upstream's function itself
        assert_same(expected, run(upstream.switched, model, lengths, sampler=sampler, **settings))
        assert recorder.take() == expected_calls
    ours = run(upstream.switched, model, lengths, sampler="lrd", **settings, **FEATURES_OFF)
    assert_same(expected, ours)
    assert recorder.take() == expected_calls
    assert not any((tokens == MASK).any() for tokens in expected.values())


def test_the_settings_reach_upstream_differently(upstream: Upstream) -> None:
    """The parametrisation above is not vacuous: threshold, block cache and sub-block size each change
    the forwards, and a request finishes early (leaving the batch and the prefix cache)."""
    model = tiny_model()
    recorder = Recorder(model)
    seen = []
    for setting in (
        {"threshold": 0.9},
        {"threshold": 0.95},
        {"threshold": 0.9, "small_block_size": 32},
        {"threshold": 0.9, "use_block_cache": True},
    ):
        out = run(upstream.original, model, SHORT, **setting)
        seen.append(recorder.take())
    assert all(seen[i] != seen[j] for i in range(len(seen)) for j in range(i))
    assert len(seen[0]) < len(seen[1])  # 0.9 commits more per forward than 0.95
    assert len(out[0]) < len(out[1]) and (out[0] == STOP).any()


@pytest.mark.parametrize("lengths", [SHORT, LONG, ALIGNED], ids=["short", "long", "aligned"])
@pytest.mark.parametrize(
    "settings",
    [
        {"small_block_size": 8},
        {"small_block_size": 32, "use_block_cache": True},
        {"small_block_size": 8, "use_block_cache": True, "threshold": 0.9},
        {"small_block_size": 8, "temperature": 0.7, "top_p": 0.9},
        {"small_block_size": 8, "lrd_early_stop": False},
        {"small_block_size": 8, "lrd_early_stop_rule": "paper", "lrd_tau_decode": 0.5},
    ],
)
def test_lrd_decodes_everything_and_honours_stop(
    upstream: Upstream, lengths: list[int], settings: dict[str, Any]
) -> None:
    model = tiny_model()
    recorder = Recorder(model)
    torch.manual_seed(0)
    out = run(upstream.switched, model, lengths, sampler="lrd", **settings)
    assert sorted(out) == list(range(len(lengths)))
    for request, tokens in out.items():
        assert not (tokens == MASK).any(), request
        assert bool(((tokens >= 0) & (tokens < VOCAB)).all()), request
        answer = tokens[lengths[request] :]
        stops = (answer == STOP).nonzero().flatten()
        if len(stops):  # a stop token ends the request: padding after it, no further block
            assert bool((answer[int(stops[0]) + 1 :] == PAD).all()), request
            assert len(tokens) <= (lengths[request] + int(stops[0])) // 32 * 32 + 33, request
    # mixtures never enter the prefix cache: no embedding hook in a forward that updates it
    for call, hooked in zip(recorder.calls, recorder.hooked, strict=True):
        assert not (call.get("update_past_key_values") and hooked)


def test_lrd_refines_with_mixtures(upstream: Upstream) -> None:
    """Phase 1 (as in the paper: it commits nothing) spends forwards fed mixtures; the base path never hooks."""
    model = tiny_model()
    recorder = Recorder(model)
    run(upstream.switched, model, LONG, sampler="lrd", **FEATURES_OFF)
    base_forwards, base_hooked = len(recorder.calls), any(recorder.hooked)
    recorder.take()
    run(upstream.switched, model, LONG, sampler="lrd", lrd_early_stop=False, lrd_refine_commit="none")
    assert not base_hooked and any(recorder.hooked)
    assert len(recorder.calls) > base_forwards


@pytest.mark.parametrize("lengths", [SHORT, LONG], ids=["short", "long"])
def test_composed_mode_needs_fewer_forwards_than_upstream(upstream: Upstream, lengths: list[int]) -> None:
    """The composed mode (``refine_commit="sure"``) commits what v2's threshold is sure of on Phase 1's
    first forward, and stable positions -- a later sub-block's first KL taken against the block's
    latest whole-block forward -- at a gate tied to the threshold: fewer forwards, nothing left masked."""
    model = tiny_model()
    recorder = Recorder(model)
    run(upstream.original, model, lengths, threshold=0.9)
    engine = len(recorder.take())
    composed = {"sampler": "lrd", "lrd_refine_commit": "sure", "lrd_stable_slack": 2.0}
    out = run(upstream.switched, model, lengths, threshold=0.9, **composed)
    assert len(recorder.take()) < engine
    assert not any((tokens == MASK).any() for tokens in out.values())


def test_each_request_decodes_as_it_would_alone(upstream: Upstream) -> None:
    """Rows of one batch are independent on LRD's path, also where upstream's bookkeeping is not: a
    prompt of exactly one block (upstream decodes it without the prompt) and a prompt ending at a block
    boundary beside a longer one (upstream leaves its next position masked)."""
    model = tiny_model()
    lengths = [32, 10, 64, 70]
    ids, _ = prompts(lengths)
    together = run_ids(upstream.switched, model, ids, lengths, sampler="lrd", **FEATURES_OFF)
    for request, length in enumerate(lengths):
        alone = run_ids(
            upstream.switched, model, ids[request : request + 1, :length], [length], sampler="lrd", **FEATURES_OFF
        )[0]
        width = min(len(alone), len(together[request]))  # the batch runs as many blocks as its longest prompt needs
        assert torch.equal(together[request][:width], alone[:width]), request
        assert not (together[request] == MASK).any()


# --- bad settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sampler": "fast"}, r"sampler must be one of \[None, 'default', 'lrd'\]"),
        ({"lrd_r_f": 0.2}, "without sampler='lrd'"),
        ({"sampler": "lrd", "lrd_threshold": 0.5}, "lrd_threshold is set by Fast-dLLM's own arguments"),
        ({"sampler": "lrd", "lrd_bogus": 1}, r"unknown LRD setting lrd_bogus; allowed: \['lrd_alpha_form'"),
        ({"sampler": "lrd", "lrd_r_f": 2.0}, "r_f"),
        ({"sampler": "lrd", "lrd_early_stop_scope": "sequence"}, "lrd_early_stop_scope must be 'block'"),
        ({"sampler": "lrd", "small_block_size": 5}, r"small_block_size \(5\) must divide block_size \(32\)"),
        ({"sampler": "lrd", "threshold": 1.5}, r"threshold must be in \[0, 1\]"),
        ({"sampler": "lrd", "top_p": 0.0}, r"top_p must be in \(0, 1\]"),
        ({"sampler": "lrd", "temperature": -1.0}, "temperature must be >= 0"),
        ({"sampler": "lrd", "max_new_tokens": 16}, r"max_new_tokens \(16\) must be at least block_size \(32\)"),
        ({"sampler": "lrd", "min_len": 6}, "min_len must be the shortest prompt"),
        ({"sampler": "lrd", "tokenizer": object()}, "tokenizer.pad_token_id must be an int"),
    ],
)
def test_bad_settings_are_refused(upstream: Upstream, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(upstream.switched, tiny_model(), SHORT, **kwargs)


# --- patches/ and the lm-eval harness ------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def patched_root(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout (shared/ may be read-only) with ``patches/apply.py`` applied."""
    if not (layout.root / "v2" / "generation_functions.py").is_file():
        pytest.skip(f"{layout.root} has no v2/ (Fast-dLLM v2 arrived with a9b81e4)")
    root = tmp_path_factory.mktemp("v2_patched") / "fast-dllm"
    shutil.copytree(layout.root, root, ignore=shutil.ignore_patterns(".git"))
    done = subprocess.run(
        [sys.executable, str(REPO / "patches" / "apply.py"), str(root)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return root


def test_patched_batch_sample_matches_runtime_plugin(upstream: Upstream, patched_root: Path) -> None:
    patched = vars(load_generation_functions(patched_root).Fast_dLLM_QwenForCausalLM)["batch_sample"]
    assert getattr(patched, "__lrd_switch__", False)
    source = Path(inspect.unwrap(patched).__code__.co_filename)
    assert source.is_relative_to(patched_root) and b"# lrd-plugin" in source.read_bytes()
    model = tiny_model()
    recorder = Recorder(model)
    for settings in ({}, {"sampler": "lrd"}, {"sampler": "lrd", "use_block_cache": True, "small_block_size": 32}):
        expected = run(upstream.switched, model, LONG, **settings)
        expected_calls = recorder.take()
        assert_same(expected, run(patched, model, LONG, **settings))
        assert recorder.take() == expected_calls


class CharTokenizer:
    """Just what v2's harness calls on its tokenizer: ``tokenizer([text], return_tensors="pt")`` and
    ``decode``; one id per character (0 .. 59)."""

    pad_token_id = PAD

    def __call__(self, texts: list[str], return_tensors: str = "pt") -> Any:
        from transformers import BatchEncoding

        return BatchEncoding({"input_ids": torch.tensor([[ord(c) % 60 for c in text] for text in texts])})

    def decode(self, ids: Tensor, skip_special_tokens: bool = True) -> str:
        return "".join(chr(48 + int(i) % 60) for i in ids if int(i) < 60)


def test_v2_harness_takes_sampler_lrd(patched_root: Path, layout: Layout, monkeypatch: pytest.MonkeyPatch) -> None:
    """``v2/eval.py``'s ``fast_dllm_v2`` harness, patched: ``sampler=lrd`` and ``lrd_*`` model args are
    checked when it is made and in force in its ``generate_until``; without them it is upstream's."""
    pytest.importorskip("lm_eval", reason="lm-eval 0.4.8 is not installed (integration_tests/run.sh installs it)")
    module = import_flat(patched_root / "v2", "eval")
    harness = module.Fast_dLLM_v2EvalHarness
    assert getattr(harness, "__lrd_switch__", False)
    with pytest.raises(ValueError, match="unknown LRD setting lrd_rf"):
        harness(model_path="unused", device="cpu", sampler="lrd", lrd_rf=0.2)

    model = tiny_model()
    recorder = Recorder(model)
    loader = SimpleNamespace(from_pretrained=lambda *args, **kwargs: model)  # no hub: our model, our tokenizer
    monkeypatch.setattr(module, "AutoModelForCausalLM", loader)
    monkeypatch.setattr(module, "AutoTokenizer", SimpleNamespace(from_pretrained=lambda *a, **k: CharTokenizer()))
    requests = [SimpleNamespace(args=(text, {}), task_name="local") for text in ("3+4=", "a longer question, 12*3=")]
    answers, forwards = [], []
    paper_phase1 = {"sampler": "lrd", "lrd_r_f": "0.15", "lrd_refine_commit": "none"}
    for extra in ({}, {"sampler": "lrd", **FEATURES_OFF}, paper_phase1):
        lm = harness(
            model_path="unused", device="cpu", max_new_tokens=64, batch_size=2, mask_id=MASK, threshold=0.9, **extra
        )
        answers.append(lm.generate_until(requests))
        forwards.append(len(recorder.take()))
    assert answers[1] == answers[0] and forwards[1] == forwards[0]
    assert forwards[2] != forwards[0]  # LRD's phases ran inside the harness


def test_launcher_switches_the_v2_harness(layout: Layout) -> None:
    """``python -m lrd_plugin.integrations.fast_dllm.evaluate v2`` loads upstream's v2/eval.py switched."""
    if not (layout.root / "v2" / "eval.py").is_file():
        pytest.skip(f"{layout.root} has no v2/eval.py")
    pytest.importorskip("lm_eval", reason="lm-eval 0.4.8 is not installed (integration_tests/run.sh installs it)")
    code = (
        "from lrd_plugin.integrations.fast_dllm.evaluate import load_harness\n"
        "cls = load_harness('v2')\n"
        "import generation_functions as functions\n"
        "print(cls.__name__, cls.__lrd_switch__, functions.Fast_dLLM_QwenForCausalLM.batch_sample.__lrd_switch__)\n"
    )
    env = {**os.environ, ENV_VAR: str(layout.root)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["Fast_dLLM_v2EvalHarness", "True", "True"]
