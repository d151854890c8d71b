#!/usr/bin/env bash
# Quickstart 1: set up .venv and run the main job: the side-by-side benchmark (LLaDA baseline,
# Fast-dLLM-style, LRD, LRD + Fast-dLLM) in quick mode on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv cli,code  # code: the tokenizer of `--model code`
exec .venv/bin/lrd bench --quick "$@"
