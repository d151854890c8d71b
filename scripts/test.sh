#!/usr/bin/env bash
# Quickstart 2: set up .venv and pass the tests: lint, the whole suite under transformers 5.x, then
# the transformers-facing tests again under transformers 4.57 (Fast-dLLM's model code needs 4.x), then
# the Fast-dLLM integration tests against both pinned upstream trees, then LRD inside the released
# SGLang's dLLM loops (sglang installed without its CUDA-only requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv test,hf
.venv/bin/ruff check .
.venv/bin/ruff format --check .
bash scripts/checkpoints.sh default_v1   # the first default, a second trained model for tests/test_rules.py
.venv/bin/python -m pytest -q
ensure_venv .venv-tf4 test "transformers==4.57.6"
.venv-tf4/bin/python -m pytest -q tests/test_hf_models.py tests/test_exactness.py
# Upstream Fast-dLLM at its two pinned commits, beside the clone in ../shared (read-only: the tests that
# patch a tree patch a copy in a temporary folder). CI must have them; elsewhere they run when present.
FAST_DLLM_TREES=(../shared/upstream/fast-dllm/a9b81e4 ../shared/upstream/fast-dllm/24cc59e)
if [ -n "${CI:-}" ] || [ -d "${FAST_DLLM_TREES[0]}" ]; then
  bash integration_tests/run.sh "${FAST_DLLM_TREES[@]}"
else
  echo "skipped the Fast-dLLM integration tests: no ${FAST_DLLM_TREES[0]} (see integration_tests/run.sh)" >&2
fi
ensure_sglang_venv .venv-sglang
LRD_REQUIRE_SGLANG=1 .venv-sglang/bin/python -m pytest -q -p no:cacheprovider integration_tests/sglang
