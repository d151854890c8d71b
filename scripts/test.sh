#!/usr/bin/env bash
# Quickstart 2: set up .venv and pass the tests: lint, the whole suite under transformers 5.x, then
# the transformers-facing tests again under transformers 4.57 (Fast-dLLM's model code needs 4.x), then
# LRD inside the released SGLang's dLLM loops (sglang installed without its CUDA-only requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv test,hf
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q
ensure_venv .venv-tf4 test "transformers==4.57.6"
.venv-tf4/bin/python -m pytest -q tests/test_hf_models.py tests/test_exactness.py
ensure_sglang_venv .venv-sglang
LRD_REQUIRE_SGLANG=1 .venv-sglang/bin/python -m pytest -q -p no:cacheprovider integration_tests/sglang
