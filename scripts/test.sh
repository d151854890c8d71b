#!/usr/bin/env bash
# Quickstart 2: set up .venv and pass the tests: lint, the whole suite under transformers 5.x, then
# the transformers-facing tests again under transformers 4.57 (Fast-dLLM's model code needs 4.x).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv test,hf
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/python -m pytest -q
ensure_venv .venv-tf4 test "transformers==4.57.6"
.venv-tf4/bin/python -m pytest -q tests/test_hf_models.py tests/test_exactness.py
