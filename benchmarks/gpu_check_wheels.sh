#!/usr/bin/env bash
# Stage what benchmarks/gpu_check.py's part (b) needs on the GPU machine, which has no network and
# ships transformers 5.x (Fast-dLLM v1's model code needs 4.x):
#   .gpu_check/wheels/     transformers 4.57.6 and the two of its requirements whose device versions
#                          it refuses (huggingface-hub < 1.0, tokenizers <= 0.23.0), for CPython 3.12
#                          on x86-64, plus requests and its pure-Python needs (in the device image, but
#                          not in this project's .venv, so the same folder runs part (b) here too);
#                          the rest it imports (numpy, safetensors, regex, pyyaml, tqdm, filelock,
#                          packaging) is in both.
#   .gpu_check/fast-dllm   a link to the pinned Fast-dLLM checkout: the ../shared folder beside the
#                          checkout does not travel with the working tree, but a carried path through
#                          a link does (as a real folder on the device).
# Both are ignored by git (.gitignore: /.gpu_check/) and travel with
# `carry: [".gpu_check/wheels", ".gpu_check/fast-dllm/v1/llada"]` (about 16 MB of the 64 MiB limit).
#
#   bash benchmarks/gpu_check_wheels.sh [FAST_DLLM_ROOT]   # default ../shared/upstream/fast-dllm/a9b81e4
set -euo pipefail
cd "$(dirname "$0")/.."
stage=.gpu_check
root=${1:-${FAST_DLLM_ROOT:-../shared/upstream/fast-dllm/a9b81e4}}
pip=(python3 -m pip)
[ -x .venv/bin/pip ] && pip=(.venv/bin/pip)

mkdir -p "$stage/wheels"
"${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$stage/wheels" transformers==4.57.6 huggingface-hub==0.36.0 tokenizers==0.22.1 \
  requests==2.32.5 urllib3==2.5.0 certifi==2025.8.3

if [ -f "$root/v1/llada/generate.py" ]; then
  # A link, not a copy: the device tool carries a path *through* a link as a real folder (carry
  # ".gpu_check/fast-dllm/v1/llada"), so upstream's files travel without being copied into the tree.
  rm -rf "$stage/fast-dllm"
  ln -s "$(cd "$root" && pwd)" "$stage/fast-dllm"
else
  echo "no Fast-dLLM v1 checkout at $root: part (b) will be skipped on the device" >&2
fi
du -shL "$stage/wheels" "$stage/fast-dllm/v1/llada"
ls "$stage/wheels"

# The device call carries the working tree (tracked files and untracked ones git does not ignore)
# plus the two carried paths, 64 MiB in all; a tree grown past it would fail the one GPU call.
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | xargs -0 -r du -cb 2>/dev/null \
  | awk '$2 == "total" { sum += $1 } END { print sum + 0 }')
carried=$(du -sbL "$stage/wheels" "$stage/fast-dllm/v1/llada" 2>/dev/null | awk '{ sum += $1 } END { print sum + 0 }')
limit=$((64 * 1024 * 1024))
echo "device payload: working tree $((tree / 1048576)) MiB + carried $((carried / 1048576)) MiB of 64 MiB"
if [ $((tree + carried)) -gt "$limit" ]; then
  echo "the device call would carry more than 64 MiB: shrink the working tree before the GPU run" >&2
  exit 1
fi
