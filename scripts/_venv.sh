# Sourced by the other scripts: make sure a virtual environment exists with torch pinned to the
# CPU wheel (an unpinned torch would pull gigabytes of CUDA packages), then install extras.
# usage: ensure_venv DIR EXTRAS [EXTRA_PIP_ARGS...]
ensure_venv() {
  local dir=$1 extras=$2
  shift 2
  local py=${PYTHON:-python3}
  "$py" -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
  [ -x "$dir/bin/python" ] || "$py" -m venv "$dir"
  _pip "$dir" torch==2.13.0
  _pip "$dir" -e ".[$extras]" "$@"
}

# pip, quiet, without the machine's notes about absent local index folders
_pip() {
  local dir=$1
  shift
  "$dir/bin/pip" install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

# SGLang's released wheel for the SGLang integration tests. Its own requirements pin a CUDA torch and
# CUDA-only kernels, so sglang goes in without dependencies and then only the pure-Python packages
# its dLLM modules import; a constraint keeps every resolver step on the CPU torch.
SGLANG_VERSION=0.5.23
SGLANG_IMPORTS=(
  "transformers==5.19.0" "compressed-tensors==0.18.0" "apache-tvm-ffi==0.1.11" "openai==2.8.0"
  "sentencepiece==0.2.1" aiohttp dill einops fastapi gguf ipython msgspec numpy orjson
  partial_json_parser pillow psutil pybase64 pyyaml pyzmq requests triton uvicorn
)
ensure_sglang_venv() {
  local dir=$1
  ensure_venv "$dir" test
  local constraint
  constraint=$(mktemp)
  echo "torch==2.13.0" >"$constraint"
  _pip "$dir" --no-deps "sglang==$SGLANG_VERSION"
  _pip "$dir" -c "$constraint" "${SGLANG_IMPORTS[@]}"
  rm -f "$constraint"
}
