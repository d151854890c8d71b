"""Integration tests against a real Fast-dLLM checkout, found through $FAST_DLLM_ROOT.

Without a checkout every test here is skipped with that reason (never failed): run
``integration_tests/run.sh /path/to/Fast-dLLM [...]`` to create the environment (torch 2.13.0,
transformers 4.57.x) and run them once per checkout.
"""

from __future__ import annotations

import os

os.environ.setdefault("TORCH_COMPILE_DISABLE", "1")  # upstream wraps attention in torch.compile at import

import pytest

from lrd_plugin.integrations.fast_dllm.layout import ENV_VAR, Layout, detect_layout


@pytest.fixture(scope="session")
def layout() -> Layout:
    if not os.environ.get(ENV_VAR):
        pytest.skip(f"{ENV_VAR} is not set: no Fast-dLLM checkout to test against")
    return detect_layout()
