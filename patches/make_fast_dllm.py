"""Regenerate ``patches/fast_dllm/<commit>.json`` from a pristine Fast-dLLM checkout.

Usage::

    python patches/make_fast_dllm.py FAST_DLLM_ROOT COMMIT   # e.g. ... /src/Fast-dLLM a9b81e4

Anchors are found by function name, so the JSON holds only our lines, line numbers and hashes (no
upstream text, not even as context). Each result is checked to round-trip through `apply.py`
(insert gives the patched hash, remove gives the pristine bytes back) before it is written.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import apply  # this directory is not a package, hence the sys.path line above

LLADA_IMPORT = "from lrd_plugin.integrations.fast_dllm.llada import sampler_switch as _lrd_sampler_switch"
DREAM_IMPORT = (
    "from lrd_plugin.integrations.fast_dllm.dream import generate_switch as _lrd_generate_switch, "
    "sample_switch as _lrd_sample_switch"
)
# (function name, decorator) — ours goes above the function's existing decorators, so it is outermost
LLADA_DECORATORS = (
    ("generate", '@_lrd_sampler_switch("none")'),
    ("generate_with_prefix_cache", '@_lrd_sampler_switch("prefix")'),
    ("generate_with_dual_cache", '@_lrd_sampler_switch("dual")'),
)
DREAM_CLASS = "DreamGenerationMixin"
# lm-eval harnesses: (file kind, class name, decorator); ours goes right above the ``class`` line
HARNESS_IMPORT = (
    "from lrd_plugin.integrations.fast_dllm.evaluate import llada_harness_switch as _lrd_llada_harness_switch, "
    "dream_harness_switch as _lrd_dream_harness_switch"
)
HARNESSES = {
    "llada_eval": ("LLaDAEvalHarness", "@_lrd_llada_harness_switch"),
    "dream_eval": ("Dream", "@_lrd_dream_harness_switch"),
}
DREAM_DECORATORS = (("diffusion_generate", "@_lrd_generate_switch"), ("_sample", "@_lrd_sample_switch"))
# Fast-dLLM v2 (a9b81e4 and later): batch_sample inside its model class, and its lm-eval harness
V2_IMPORT = "from lrd_plugin.integrations.fast_dllm.v2 import sampler_switch as _lrd_v2_sampler_switch"
V2_CLASS, V2_DECORATOR = "Fast_dLLM_QwenForCausalLM", ("batch_sample", "@_lrd_v2_sampler_switch")
V2_HARNESS_IMPORT = "from lrd_plugin.integrations.fast_dllm.evaluate import v2_harness_switch as _lrd_v2_harness_switch"
V2_HARNESS = ("Fast_dLLM_v2EvalHarness", "@_lrd_v2_harness_switch")


def _mark(line: str) -> str:
    return f"{line}  {apply.MARKER}"


def _first_import(lines: list[str]) -> int:
    """0-based index of the first top-level import that is not ``from __future__``."""
    for index, line in enumerate(lines):
        if re.match(r"(import|from)\s", line) and not line.startswith("from __future__"):
            return index
    raise ValueError("no top-level import found")


def _decorator_anchor(lines: list[str], name: str, start: int = 0, indent: str = "") -> int:
    """0-based index of the first decorator line above ``def name(`` (or the def itself)."""
    pattern = re.compile(rf"{re.escape(indent)}(async\s+)?def\s+{re.escape(name)}\s*\(")
    hits = [i for i in range(start, len(lines)) if pattern.match(lines[i])]
    if len(hits) != 1:
        raise ValueError(f"expected one definition of {name} at indent {len(indent)}, found {len(hits)}")
    index = hits[0]
    while index > 0 and lines[index - 1].startswith(f"{indent}@"):
        index -= 1
    return index


def _insertions(text: str, kind: str) -> list[dict]:
    """Anchors (1-based ``before_line``) and our lines for one target file."""
    lines = text.splitlines()
    if kind == "v2_eval":
        name, decorator = V2_HARNESS
        classes = [i for i, line in enumerate(lines) if re.match(rf"class\s+{name}\b", line)]
        if len(classes) != 1:
            raise ValueError(f"expected one class {name}")
        found = [(_first_import(lines), _mark(V2_HARNESS_IMPORT)), (classes[0], _mark(decorator))]
    elif kind == "v2":
        classes = [i for i, line in enumerate(lines) if re.match(rf"class\s+{V2_CLASS}\b", line)]
        if len(classes) != 1:
            raise ValueError(f"expected one class {V2_CLASS}")
        name, decorator = V2_DECORATOR
        indent = "    "
        found = [
            (_first_import(lines), _mark(V2_IMPORT)),
            (_decorator_anchor(lines, name, classes[0], indent), _mark(indent + decorator)),
        ]
    elif kind in HARNESSES:
        name, decorator = HARNESSES[kind]
        classes = [i for i, line in enumerate(lines) if re.match(rf"class\s+{name}\b", line)]
        if len(classes) != 1:
            raise ValueError(f"expected one class {name}")
        found = [(_first_import(lines), _mark(HARNESS_IMPORT)), (classes[0], _mark(decorator))]
    elif kind == "llada":
        found = [(_first_import(lines), _mark(LLADA_IMPORT))]
        found += [(_decorator_anchor(lines, name), _mark(line)) for name, line in LLADA_DECORATORS]
    else:
        found = [(_first_import(lines), _mark(DREAM_IMPORT))]
        classes = [i for i, line in enumerate(lines) if re.match(rf"class\s+{DREAM_CLASS}\b", line)]
        if len(classes) != 1:
            raise ValueError(f"expected one class {DREAM_CLASS}")
        indent = "    "
        found += [
            (_decorator_anchor(lines, name, classes[0], indent), _mark(indent + line))
            for name, line in DREAM_DECORATORS
        ]
    found.sort()
    return [{"before_line": index + 1, "lines": [line]} for index, line in found]


def build(root: Path, commit: str) -> dict:
    """The spec dict for the checkout at `root` (which must be pristine)."""
    prefix = "v1/" if (root / "v1" / "llada" / "generate.py").is_file() else ""
    files = []
    targets = [
        (f"{prefix}llada/generate.py", "llada"),
        (f"{prefix}dream/model/generation_utils_block.py", "dream"),
        (f"{prefix}llada/eval_llada.py", "llada_eval"),
        (f"{prefix}dream/eval.py", "dream_eval"),
    ]
    if (root / "v2" / "generation_functions.py").is_file():  # Fast-dLLM v2 (a9b81e4 and later)
        targets += [("v2/generation_functions.py", "v2"), ("v2/eval.py", "v2_eval")]
    for relative, kind in targets:
        data = (root / relative).read_bytes()
        if apply.MARKER.encode() in data:
            raise ValueError(f"{relative} already contains {apply.MARKER!r}: give a pristine checkout")
        insertions = _insertions(data.decode("utf-8"), kind)
        entry = {
            "path": relative,
            "sha256_pristine": apply.sha256(data),
            "sha256_patched": "",
            "insertions": insertions,
        }
        file_spec = apply.spec_from_dict({"format": apply.FORMAT, "files": [entry]}, commit).files[0]
        patched = apply.insert_lines(data, file_spec)
        if apply.remove_lines(patched, file_spec) != data:
            raise AssertionError(f"{relative}: insert/remove does not round-trip")
        entry["sha256_patched"] = apply.sha256(patched)
        files.append(entry)
    return {
        "format": apply.FORMAT,
        "upstream": {"repository": "https://github.com/NVlabs/Fast-dLLM", "commit": _full_commit(root, commit)},
        "layout": "v1" if prefix else "root",
        "marker": apply.MARKER,
        "files": files,
    }


def _full_commit(root: Path, commit: str) -> str:
    """The full hash when `root` is a git clone that has `commit`, else `commit` as given."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--verify", f"{commit}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return commit
    return out.stdout.strip() or commit


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="a pristine Fast-dLLM checkout")
    parser.add_argument("commit", help="its upstream commit, short form (names the JSON file)")
    parser.add_argument("--out", type=Path, default=apply.SPEC_DIR)
    args = parser.parse_args()
    spec = build(args.root.resolve(), args.commit)
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.commit}.json"
    target.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
