"""Apply, check or revert the LRD switch in a Fast-dLLM checkout's own files.

Usage::

    python patches/apply.py [--check | --revert] FAST_DLLM_ROOT

The patch data (``patches/fast_dllm/<commit>.json``) holds insertions only — our own lines, each
ending in ``# lrd-plugin``, anchored by line number to an upstream file whose sha256 is pinned — so
that no upstream line needs to live in this repository. Pinning both hashes is what makes line
numbers safe: a file is written only when it is byte for byte the pristine upstream file (apply) or
exactly that file patched (revert); anything else is refused before any file is touched.

Standard library only, so it runs in whatever environment the checkout uses. Also importable:
``run(root, action)`` does what the command line does and returns a `Report`.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "lrd-plugin-insertions/1"
MARKER = "# lrd-plugin"
SPEC_DIR = Path(__file__).resolve().parent / "fast_dllm"
ACTIONS = ("apply", "revert", "check")

PRISTINE, PATCHED, MISSING, UNKNOWN = "pristine", "patched", "missing", "unknown"


class PatchError(Exception):
    """The checkout cannot be patched or reverted as asked; nothing was written."""


@dataclass(frozen=True)
class Insertion:
    before_line: int  # 1-based line number in the pristine file; our lines go above it
    lines: tuple[str, ...]  # without line endings; the file's own line ending is used


@dataclass(frozen=True)
class FileSpec:
    path: str  # relative to the checkout root, with "/" separators
    sha256_pristine: str
    sha256_patched: str
    insertions: tuple[Insertion, ...]


@dataclass(frozen=True)
class Spec:
    name: str  # the upstream commit, short form: also the JSON file's stem
    commit: str
    layout: str
    files: tuple[FileSpec, ...]


@dataclass
class Report:
    """What `run` found and did; `states` are the per-file states after the run."""

    spec: Spec
    action: str
    before: dict[str, str]
    states: dict[str, str]
    written: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        """``pristine``, ``patched`` or ``mixed`` (some files each way, e.g. after a manual revert)."""
        values = set(self.states.values())
        return values.pop() if len(values) == 1 else "mixed"


# ---------------------------------------------------------------------------------------------
# spec files


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """A spec from its JSON file, checked so that a malformed file fails here, not halfway through a
    checkout."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    return spec_from_dict(data, name=path.stem)


def spec_from_dict(data: dict, name: str) -> Spec:
    """Validate the JSON structure (format tag, marker on every line, ascending anchors)."""
    if data.get("format") != FORMAT:
        raise ValueError(f"spec {name}: format must be {FORMAT!r}, got {data.get('format')!r}")
    files = []
    for entry in data["files"]:
        insertions = []
        last = 0
        for item in entry["insertions"]:
            before = item["before_line"]
            lines = tuple(item["lines"])
            if not isinstance(before, int) or isinstance(before, bool) or before < 1 or before < last:
                raise ValueError(f"spec {name}, {entry['path']}: before_line must be ascending ints >= 1")
            if not lines or any(not line.rstrip().endswith(MARKER) or "\n" in line or "\r" in line for line in lines):
                raise ValueError(f"spec {name}, {entry['path']}: every inserted line must end with {MARKER!r}")
            last = before
            insertions.append(Insertion(before, lines))
        files.append(FileSpec(entry["path"], entry["sha256_pristine"], entry["sha256_patched"], tuple(insertions)))
    upstream = data.get("upstream", {})
    return Spec(name=name, commit=upstream.get("commit", name), layout=data.get("layout", ""), files=tuple(files))


def load_specs(directory: str | os.PathLike[str] = SPEC_DIR) -> list[Spec]:
    """Every known upstream commit's spec."""
    specs = [load_spec(path) for path in sorted(Path(directory).glob("*.json"))]
    if not specs:
        raise PatchError(f"no patch data (*.json) in {directory}")
    return specs


# ---------------------------------------------------------------------------------------------
# pure byte transforms


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _newline(lines: Sequence[bytes]) -> bytes:
    """The file's own line ending (from its first line), so inserted lines match it."""
    for line in lines:
        for ending in (b"\r\n", b"\n", b"\r"):
            if line.endswith(ending):
                return ending
    return b"\n"


def insert_lines(data: bytes, spec: FileSpec) -> bytes:
    """`data` (the pristine file) with our lines inserted above their anchors."""
    lines = data.splitlines(keepends=True)
    newline = _newline(lines)
    out: list[bytes] = []
    cursor = 0
    for insertion in spec.insertions:
        if insertion.before_line > len(lines):
            raise PatchError(f"{spec.path}: anchor line {insertion.before_line} is past the end ({len(lines)} lines)")
        out.extend(lines[cursor : insertion.before_line - 1])
        cursor = insertion.before_line - 1
        out.extend(line.encode("utf-8") + newline for line in insertion.lines)
    out.extend(lines[cursor:])
    return b"".join(out)


def remove_lines(data: bytes, spec: FileSpec) -> bytes:
    """`data` (the patched file) without exactly the lines `insert_lines` added; each removed line is
    checked to be ours."""
    lines = data.splitlines(keepends=True)
    drop: set[int] = set()
    offset = 0
    for insertion in spec.insertions:
        for i, expected in enumerate(insertion.lines):
            index = insertion.before_line - 1 + offset + i
            found = lines[index].rstrip(b"\r\n") if index < len(lines) else None
            if found != expected.encode("utf-8") or not expected.rstrip().endswith(MARKER):
                raise PatchError(f"{spec.path}: line {index + 1} is not the expected '{MARKER}' line")
            drop.add(index)
        offset += len(insertion.lines)
    return b"".join(line for index, line in enumerate(lines) if index not in drop)


# ---------------------------------------------------------------------------------------------
# checkouts


def file_state(root: Path, spec: FileSpec) -> str:
    path = root / spec.path
    if not path.is_file():
        return MISSING
    digest = sha256(path.read_bytes())
    return PRISTINE if digest == spec.sha256_pristine else PATCHED if digest == spec.sha256_patched else UNKNOWN


def detect(root: str | os.PathLike[str], specs: Iterable[Spec] | None = None) -> tuple[Spec, dict[str, str]]:
    """The known commit whose files all hash to pristine or patched, with those states; otherwise a
    `PatchError` naming each file that is off."""
    root = Path(root)
    if not root.is_dir():
        raise PatchError(f"{root} is not a directory")
    specs = load_specs() if specs is None else list(specs)
    matches, problems = [], []
    for spec in specs:
        states = {f.path: file_state(root, f) for f in spec.files}
        bad = {path: state for path, state in states.items() if state in (MISSING, UNKNOWN)}
        if not bad:
            matches.append((spec, states))
        elif len(bad) < len(states):  # this commit's layout, but some file is off
            problems.extend(f"  {path}: {_describe(state, spec)}" for path, state in bad.items())
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(spec.name for spec in specs)
    if len(matches) > 1:
        raise PatchError(f"{root} matches more than one known commit ({', '.join(s.name for s, _ in matches)})")
    if not problems:
        expected = "; ".join(" and ".join(f.path for f in spec.files) for spec in specs)
        raise PatchError(f"{root} is not a Fast-dLLM checkout: none of {expected} is there. Nothing was written.")
    raise PatchError(
        f"{root} is not a Fast-dLLM checkout this patch knows (known commits: {known}):\n" + "\n".join(problems) + "\n"
        "Nothing was written. Restore the files (git checkout -- <file>) or use the runtime plugin "
        "(lrd_plugin.integrations.fast_dllm.enable_llada), which does not depend on exact file contents."
    )


def _describe(state: str, spec: Spec) -> str:
    if state == MISSING:
        return "missing"
    return f"modified: its sha256 is neither upstream {spec.name}'s nor that file patched"


def plan(root: str | os.PathLike[str], action: str, specs: Iterable[Spec] | None = None) -> Report:
    """Detect the commit and work out every file's new state, without writing anything."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {list(ACTIONS)}, got {action!r}")
    spec, before = detect(root, specs)
    after = dict(before)
    if action != "check":
        after = dict.fromkeys(before, PRISTINE if action == "revert" else PATCHED)
    return Report(spec=spec, action=action, before=before, states=after)


def run(root: str | os.PathLike[str], action: str = "apply", specs: Iterable[Spec] | None = None) -> Report:
    """Apply, revert or check one checkout, all files or none: every file is verified and its new
    bytes computed (and re-hashed) before the first write; a failed write puts back those written."""
    root = Path(root)
    report = plan(root, action, specs)
    if action == "check":
        return report
    pending: list[tuple[Path, bytes, bytes]] = []
    for spec in report.spec.files:
        if report.before[spec.path] == report.states[spec.path]:
            continue  # already in the wanted state
        path = root / spec.path
        old = path.read_bytes()
        if action == "apply":
            new, want = insert_lines(old, spec), spec.sha256_patched
        else:
            new, want = remove_lines(old, spec), spec.sha256_pristine
        if sha256(new) != want:
            raise PatchError(f"{spec.path}: the {action} result does not have the pinned sha256 (corrupt patch data?)")
        pending.append((path, old, new))
    done: list[tuple[Path, bytes]] = []
    try:
        for path, old, new in pending:
            _write_atomic(path, new)
            done.append((path, old))
    except BaseException:
        for path, old in reversed(done):
            _write_atomic(path, old)
        raise
    report.written = [str(path.relative_to(root)).replace(os.sep, "/") for path, _, _ in pending]
    return report


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` in one rename, keeping its permissions: never a half-written upstream file."""
    mode = path.stat().st_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".lrd-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------------------------
# command line


def _message(report: Report) -> str:
    head = f"Fast-dLLM {report.spec.name} ({report.spec.layout} layout)"
    files = "\n".join(f"  {path}: {state}" for path, state in report.before.items())
    if report.action == "check":
        return f"{head}: {report.state}\n{files}"
    verb = "patched" if report.action == "apply" else "reverted to pristine"
    if not report.written:
        return f"{head}: already {'patched' if report.action == 'apply' else 'pristine'}, nothing to do"
    return f"{head}: {verb} " + ", ".join(report.written)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="apply.py",
        description="Add (or remove) LRD's sampler switch in a Fast-dLLM checkout. Exit status: 0 done or "
        "nothing to do, 1 refused (nothing written).",
    )
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--revert", action="store_true", help="remove our '# lrd-plugin' lines")
    group.add_argument("--check", action="store_true", help="report the checkout's state, write nothing")
    parser.add_argument("--spec-dir", type=Path, default=SPEC_DIR, help="patch data directory (default: %(default)s)")
    parser.add_argument("root", metavar="FAST_DLLM_ROOT", help="a clone of NVlabs/Fast-dLLM")
    args = parser.parse_args(argv)
    action = "revert" if args.revert else "check" if args.check else "apply"
    try:
        report = run(args.root, action, load_specs(args.spec_dir))
    except PatchError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    print(_message(report))
    if action == "apply" and importlib.util.find_spec("lrd_plugin") is None:
        print(
            "note: lrd_plugin is not importable from this Python; the patched files import it, so install it "
            "(pip install lrd-plugin, or pip install -e /path/to/lrd-plugin) where Fast-dLLM runs",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
