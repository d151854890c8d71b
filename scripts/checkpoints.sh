#!/usr/bin/env bash
# The weights of training runs that are not shipped live in the git history, not in the working tree:
# the tree must stay small (a device machine takes at most 64 MiB of it, wheels included). This puts
# them back into benchmarks/checkpoints/NAME/ (git-ignored), where the benchmarks' commands and
# tests/test_rules.py (the first default) read them. Needs the clone's history (not a shallow clone).
#   bash scripts/checkpoints.sh [NAME ...]     (default: all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
# NAME -> "commit path": the last commit that tracked the checkpoint, and where it was
declare -A SOURCES=(
  [default_v1]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/default_v1"
  [run6]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/run6"
  [run7]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/run7"
  [run8]="28211fc6c930dad2c9d1fec69b0c2623acd2022b lrd_plugin/default_model"  # the default from stop 25 to stop 29
  [run9]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/run9"
  [run10]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/run10"
  [run11]="d813566bf63a164fa49ba15c5a4a0b6955c1925c benchmarks/checkpoints/run11"
  [run12]="7f6a12cab94719d4732be7411811528dfd9a5298 benchmarks/checkpoints/run12"
  [run13]="097f53cb846820324ffeb8ee1d71f9ee962308d2 benchmarks/checkpoints/run13"
  [run15b]="1cc4d0aea52dbf3f53b20c2c7346ae7d78ebe1fe benchmarks/checkpoints/run15b"  # count learned, old tasks not restored (stop 31)
  [run17]="52a7ceff754e4f6f4612839db8ea03b85cc660bf benchmarks/checkpoints/run17"  # restoring run from run15b: count kept, hide not learned, arith 81.5 % (stop 32)
  [run18]="fb97af567f0959bbdb417b305dd1e5c98829a46f lrd_plugin/default_model"  # the default since stop 33
  [dream1]="4f1a522cfadc1e849a77b50a415f00bb64088a3f benchmarks/checkpoints/dream1"  # run 18 under Dream's shifted objective, Dream format (stop 38)
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!SOURCES[@]}")
for name in "${names[@]}"; do
  if [ -z "${SOURCES[$name]:-}" ]; then
    echo "scripts/checkpoints.sh: unknown checkpoint '$name'; allowed: ${!SOURCES[*]}" >&2
    exit 2
  fi
  read -r commit path <<<"${SOURCES[$name]}"
  target=benchmarks/checkpoints/$name
  [ -f "$target/model.safetensors" ] && continue
  if ! git cat-file -e "$commit:$path/model.safetensors" 2>/dev/null; then
    echo "scripts/checkpoints.sh: commit $commit is not in this clone's history (a shallow clone?): fetch it first" >&2
    exit 1
  fi
  mkdir -p "$target"
  git archive "$commit" "$path" | tar -x -C "$target" --strip-components="$(awk -F/ '{print NF}' <<<"$path")"
  echo "restored $target from ${commit:0:12}:$path"
done
