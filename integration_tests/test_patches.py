"""`patches/` against a real Fast-dLLM checkout: the applier on a copy of it, and the patched files
behaving exactly like the runtime plugin.

Every test works on a copy of ``$FAST_DLLM_ROOT`` (without ``.git``) in a temporary directory; the
checkout itself is only read.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import MethodType, ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor

from integration_tests.upstream_models import LLADA_MASK, never_predict, tiny_llada
from lrd_plugin.integrations.fast_dllm import dream, llada
from lrd_plugin.integrations.fast_dllm.layout import Layout, flat_imports, import_flat

REPO = Path(__file__).resolve().parents[1]
APPLY = REPO / "patches" / "apply.py"
COMMITS = {"v1": "a9b81e4", "root": "24cc59e"}  # the commit each layout's checkout is pinned to
MASK = LLADA_MASK
MARKER = b"# lrd-plugin"


@pytest.fixture(scope="module")
def applier() -> ModuleType:
    """patches/ is not a package: load apply.py by path, as a user's script would."""
    spec = importlib.util.spec_from_file_location("lrd_patch_apply", APPLY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models on a busy 2-core machine: OpenMP threads waiting on each other cost ~100x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def copy_checkout(layout: Layout, target: Path) -> Path:
    shutil.copytree(layout.root, target, ignore=shutil.ignore_patterns(".git"))
    return target


@pytest.fixture
def checkout(layout: Layout, tmp_path: Path) -> Path:
    return copy_checkout(layout, tmp_path / "fast-dllm")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _targets(applier: ModuleType, layout: Layout) -> Any:
    spec = applier.load_spec(APPLY.parent / "fast_dllm" / f"{COMMITS[layout.name]}.json")
    return spec.files


def test_the_checkout_is_a_known_commit(applier: ModuleType, layout: Layout) -> None:
    spec, states = applier.detect(layout.root)
    assert spec.name == COMMITS[layout.name] and spec.layout == layout.name
    assert set(states.values()) == {"pristine"}, "the checkout under test must be unpatched"


def test_apply_is_idempotent_and_revert_is_byte_identical(applier: ModuleType, layout: Layout, checkout: Path) -> None:
    files = _targets(applier, layout)
    report = applier.run(checkout, "apply")
    assert sorted(report.written) == sorted(f.path for f in files)
    for f in files:
        assert _sha(checkout / f.path) == f.sha256_patched
    assert applier.run(checkout, "check").state == "patched"

    assert applier.run(checkout, "apply").written == []
    for f in files:
        assert _sha(checkout / f.path) == f.sha256_patched

    applier.run(checkout, "revert")
    for f in files:
        assert (checkout / f.path).read_bytes() == (layout.root / f.path).read_bytes()


def test_patch_adds_only_marked_lines(applier: ModuleType, layout: Layout, checkout: Path) -> None:
    """Dropping every '# lrd-plugin' line of the patched file gives upstream's file back."""
    applier.run(checkout, "apply")
    for f in _targets(applier, layout):
        patched = (checkout / f.path).read_bytes().splitlines(keepends=True)
        ours = [line for line in patched if line.rstrip().endswith(MARKER)]
        assert len(ours) == sum(len(i.lines) for i in f.insertions)
        assert b"".join(line for line in patched if line not in ours) == (layout.root / f.path).read_bytes()


@pytest.mark.parametrize("state", ["pristine", "patched"])
def test_modified_upstream_file_is_refused(applier: ModuleType, layout: Layout, checkout: Path, state: str) -> None:
    """One file edited: apply and revert both refuse, exit 1, and leave every file as it was."""
    paths = [checkout / f.path for f in _targets(applier, layout)]
    dream_file = next(path for path in paths if path.name == "generation_utils_block.py")
    if state == "patched":
        applier.run(checkout, "apply")
    dream_file.write_bytes(dream_file.read_bytes() + b"# a local edit\n")
    before = {path: path.read_bytes() for path in paths}
    for action in ("apply", "revert"):
        with pytest.raises(applier.PatchError, match="modified"):
            applier.run(checkout, action)
    command = [sys.executable, str(APPLY), str(checkout)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "Nothing was written" in result.stderr
    assert {path: path.read_bytes() for path in before} == before


# ---------------------------------------------------------------------------------------------
# the patched files against the runtime plugin on the pristine ones


class Pair:
    """One copy of the checkout, imported twice: before patching it (upstream's modules, switched at
    run time by ``install``) and after (the switch is in the files)."""

    def __init__(self, applier: ModuleType, layout: Layout, root: Path) -> None:
        self.layout = layout
        self.llada_dir = root / layout.llada_dir.relative_to(layout.root)
        self.dream_dir = root / layout.dream_dir.relative_to(layout.root)
        with flat_imports(self.llada_dir):
            self.llada_runtime: ModuleType = importlib.import_module("generate")
            self.llada_modeling = importlib.import_module("model.modeling_llada")
            self.llada_configuration = importlib.import_module("model.configuration_llada")
        with flat_imports(self.dream_dir):
            self.dream_runtime: ModuleType = importlib.import_module("model.generation_utils_block")
            self.dream_modeling = importlib.import_module("model.modeling_dream")
            self.dream_configuration = importlib.import_module("model.configuration_dream")
        self.llada_original = {name: getattr(self.llada_runtime, name) for name in llada.FUNCTIONS}
        self.dream_original = {name: vars(self.dream_runtime.DreamGenerationMixin)[name] for name in DREAM_METHODS}
        llada.install(self.llada_runtime)
        dream.install(self.dream_runtime)
        assert applier.run(root, "apply").state == "patched"
        self.llada_patched: ModuleType = import_flat(self.llada_dir, "generate")
        self.dream_patched: ModuleType = import_flat(self.dream_dir, "model.generation_utils_block")

    def tiny_llada(self, seed: int) -> Any:
        return tiny_llada(self.llada_modeling, self.llada_configuration, seed)

    def tiny_dream(self, seed: int) -> Any:
        """A random tiny Dream; ``model.forwards`` counts its forward calls (Dream returns no NFE)."""
        config = self.dream_configuration.DreamConfig(
            vocab_size=160,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            mask_token_id=MASK,
            pad_token_id=151,
            bos_token_id=152,
            eos_token_id=153,
        )
        torch.manual_seed(seed)
        model = self.dream_modeling.DreamModel(config).eval()
        model.lm_head.register_forward_hook(never_predict(MASK))
        model.forwards = 0
        model.register_forward_hook(lambda module, inputs, output: setattr(module, "forwards", module.forwards + 1))
        return model


DREAM_METHODS = ("diffusion_generate", "_sample")


@pytest.fixture(scope="module")
def pair(applier: ModuleType, layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return Pair(applier, layout, copy_checkout(layout, tmp_path_factory.mktemp("pair") / "fast-dllm"))


def _assert_from_patched_file(switched: Any, other: Any, name: str) -> None:
    """The patched file's own function carries the switch (not the runtime module's by accident)."""
    assert getattr(switched, "__lrd_switch__", False), name
    source = Path(inspect.unwrap(switched).__code__.co_filename)
    assert MARKER in source.read_bytes(), name
    assert inspect.unwrap(switched) is not inspect.unwrap(other), name


def test_patched_functions_are_switched(pair: Pair) -> None:
    for name in llada.FUNCTIONS:
        _assert_from_patched_file(getattr(pair.llada_patched, name), getattr(pair.llada_runtime, name), name)
    for name in DREAM_METHODS:
        patched = vars(pair.dream_patched.DreamGenerationMixin)[name]
        _assert_from_patched_file(patched, vars(pair.dream_runtime.DreamGenerationMixin)[name], name)


def _llada_settings(layout: Layout, sampler: str | None) -> list[dict[str, Any]]:
    """Fixed steps, threshold, factor (where the commit has it), and for LRD a run without early stop:
    the tiny model's distributions barely move, so with the KL stop on LRD stops after one refinement
    forward and a decorator naming the wrong cache would go unnoticed."""
    settings: list[dict[str, Any]] = [{"steps": 16}, {"steps": 32, "threshold": 0.3}]
    if not layout.legacy:
        settings.append({"steps": 32, "factor": 1.0})  # 24cc59e has no factor decoding
    if sampler == "lrd":
        settings.append({"steps": 16, "lrd_early_stop": False})
    return settings


@pytest.mark.parametrize("sampler", [None, "lrd"])
@pytest.mark.parametrize("function", list(llada.FUNCTIONS))
def test_patched_llada_matches_runtime_plugin(pair: Pair, function: str, sampler: str | None) -> None:
    model = pair.tiny_llada(seed=1)
    rows = 1 if pair.layout.legacy else 2  # 24cc59e's loops allocate a batch of one
    prompt = torch.randint(0, 140, (rows, 7), generator=torch.Generator().manual_seed(3))
    for setting in _llada_settings(pair.layout, sampler):
        args = {"gen_length": 32, "block_length": 8, "mask_id": MASK, **setting}
        expected, expected_nfe = getattr(pair.llada_runtime, function)(model, prompt, sampler=sampler, **args)
        patched, nfe = getattr(pair.llada_patched, function)(model, prompt, sampler=sampler, **args)
        assert torch.equal(patched, expected), setting
        assert nfe == expected_nfe, setting
        if sampler is None:  # both are upstream's own loop
            original, original_nfe = pair.llada_original[function](model, prompt, **args)
            assert torch.equal(original, expected) and original_nfe == expected_nfe, setting
        else:
            assert not (patched == MASK).any(), setting


def _bind(model: Any, methods: dict[str, Any]) -> Any:
    """As Fast-dLLM's eval.py does: the block sampler's methods bound onto a DreamModel."""
    for name in DREAM_METHODS:
        setattr(model, name, MethodType(methods[name], model))
    return model


def _dream_run(model: Any, methods: dict[str, Any], prompt: Tensor, **kwargs: Any) -> tuple[Tensor, int]:
    model.forwards = 0
    out = _bind(model, methods).diffusion_generate(prompt, **kwargs)
    return out, model.forwards


def _dream_settings(sampler: str | None) -> list[dict[str, Any]]:
    """Upstream's threshold rule and its entropy schedule; for LRD also full forwards (``use_cache``
    off) and a run without early stop (see `_llada_settings`)."""
    settings: list[dict[str, Any]] = [
        {"alg": "confidence_threshold", "threshold": 0.3, "steps": 16},
        {"alg": "entropy", "steps": 8},
    ]
    if sampler == "lrd":
        settings += [
            {"alg": "entropy", "steps": 8, "use_cache": False},
            {"alg": "entropy", "steps": 8, "lrd_early_stop": False},
        ]
    return settings


@pytest.mark.parametrize("sampler", [None, "lrd"])
@pytest.mark.parametrize("dual_cache", [False, True])
def test_patched_dream_matches_runtime_plugin(pair: Pair, dual_cache: bool, sampler: str | None) -> None:
    model = pair.tiny_dream(seed=2)
    runtime = vars(pair.dream_runtime.DreamGenerationMixin)
    patched = vars(pair.dream_patched.DreamGenerationMixin)
    prompt = torch.randint(0, 140, (1, 7), generator=torch.Generator().manual_seed(4))  # upstream: batch 1
    for setting in _dream_settings(sampler):
        args = {"max_new_tokens": 16, "block_length": 8, "temperature": 0.0, "dual_cache": dual_cache, **setting}
        expected, expected_forwards = _dream_run(model, runtime, prompt, sampler=sampler, **args)
        ours, forwards = _dream_run(model, patched, prompt, sampler=sampler, **args)
        assert torch.equal(ours, expected), setting
        assert forwards == expected_forwards, setting
        if sampler is None:
            original, original_forwards = _dream_run(model, pair.dream_original, prompt, **args)
            assert torch.equal(original, expected) and original_forwards == expected_forwards, setting
        else:
            assert not (ours == MASK).any(), setting
