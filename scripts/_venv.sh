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
