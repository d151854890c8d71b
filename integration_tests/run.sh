#!/usr/bin/env bash
# Integration tests against real Fast-dLLM checkouts, one pytest run per checkout:
#   integration_tests/run.sh /path/to/Fast-dLLM [/path/to/another/checkout ...]
# Creates .venv-tf4 (torch 2.13.0 CPU, transformers 4.57.6, einops, lm-eval 0.4.8), as Fast-dLLM v1's
# model code needs transformers 4.x. With no checkout given, every test is skipped with that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv-tf4 "test,fastdllm" "transformers==4.57.6"
if [ $# -eq 0 ]; then
  .venv-tf4/bin/python -m pytest -q -rs integration_tests --ignore=integration_tests/sglang
fi
for root in "$@"; do
  echo "== Fast-dLLM checkout: $root"
  FAST_DLLM_ROOT=$root .venv-tf4/bin/python -m pytest -q -rs integration_tests --ignore=integration_tests/sglang
done
