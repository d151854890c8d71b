#!/usr/bin/env bash
# Quickstart 1: set up .venv and run the main job (`lrd demo`) on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
ensure_venv .venv cli
exec .venv/bin/lrd demo "$@"
