"""`patches/apply.py` on a synthetic two-file "checkout": no Fast-dLLM needed.

Expected patched bytes are written out by hand here, not computed with the applier, so that the
applier's insert/remove logic is checked against an independent oracle.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.scripts import load_script

APPLY = Path(__file__).resolve().parents[1] / "patches" / "apply.py"

PRISTINE = {
    "pkg/gen.py": b"import os\n\n@deco\ndef f():\n    return 1\n",
    "pkg/sub/mix.py": b"import sys\r\nclass C:\r\n    @deco\r\n    def g(self):\r\n        pass\r\n",
}
PATCHED = {
    "pkg/gen.py": (
        b"from ours import x  # lrd-plugin\nimport os\n\n@x('a')  # lrd-plugin\n@deco\ndef f():\n    return 1\n"
    ),
    "pkg/sub/mix.py": (
        b"import sys\r\nclass C:\r\n    @y  # lrd-plugin\r\n    @z  # lrd-plugin\r\n"
        b"    @deco\r\n    def g(self):\r\n        pass\r\n"
    ),
}
INSERTIONS = {
    "pkg/gen.py": [
        {"before_line": 1, "lines": ["from ours import x  # lrd-plugin"]},
        {"before_line": 3, "lines": ["@x('a')  # lrd-plugin"]},
    ],
    "pkg/sub/mix.py": [
        {"before_line": 3, "lines": ["    @y  # lrd-plugin"]},
        {"before_line": 3, "lines": ["    @z  # lrd-plugin"]},
    ],
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def applier() -> ModuleType:
    """patches/ is not a package: load apply.py by path, as a user's script would."""
    return load_script(APPLY, "lrd_patch_apply")


def _spec_dict(insertions: dict[str, list[dict]] = INSERTIONS) -> dict:
    files = [
        {
            "path": path,
            "sha256_pristine": _sha(PRISTINE[path]),
            "sha256_patched": _sha(PATCHED[path]),
            "insertions": ins,
        }
        for path, ins in insertions.items()
    ]
    return {"format": "lrd-plugin-insertions/1", "upstream": {"commit": "fake123"}, "layout": "fake", "files": files}


@pytest.fixture
def setup(tmp_path: Path, applier: ModuleType) -> tuple[Path, Path]:
    """(checkout root with pristine files, spec directory holding fake123.json)."""
    root = tmp_path / "checkout"
    for path, data in PRISTINE.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    (spec_dir / "fake123.json").write_text(json.dumps(_spec_dict()), encoding="utf-8")
    return root, spec_dir


def _contents(root: Path) -> dict[str, bytes]:
    return {path: (root / path).read_bytes() for path in PRISTINE}


def test_apply_is_idempotent_and_revert_restores_bytes(setup: tuple[Path, Path], applier: ModuleType) -> None:
    root, spec_dir = setup
    specs = applier.load_specs(spec_dir)
    assert applier.run(root, "check", specs).state == "pristine"

    report = applier.run(root, "apply", specs)
    assert report.spec.name == "fake123" and sorted(report.written) == sorted(PRISTINE)
    assert _contents(root) == PATCHED
    assert applier.run(root, "check", specs).state == "patched"

    again = applier.run(root, "apply", specs)
    assert again.written == [] and _contents(root) == PATCHED

    reverted = applier.run(root, "revert", specs)
    assert sorted(reverted.written) == sorted(PRISTINE) and _contents(root) == PRISTINE
    assert applier.run(root, "revert", specs).written == []


def test_mixed_state_is_completed(setup: tuple[Path, Path], applier: ModuleType) -> None:
    """One file reverted by hand (git checkout) while the other stays patched: apply finishes the job."""
    root, spec_dir = setup
    specs = applier.load_specs(spec_dir)
    (root / "pkg/gen.py").write_bytes(PATCHED["pkg/gen.py"])
    assert applier.run(root, "check", specs).state == "mixed"
    assert applier.run(root, "apply", specs).written == ["pkg/sub/mix.py"]
    assert _contents(root) == PATCHED


@pytest.mark.parametrize("action", ["apply", "revert"])
def test_modified_file_is_refused_and_nothing_written(
    setup: tuple[Path, Path], applier: ModuleType, action: str
) -> None:
    root, spec_dir = setup
    specs = applier.load_specs(spec_dir)
    start = PRISTINE if action == "apply" else PATCHED
    for path, data in start.items():
        (root / path).write_bytes(data)
    (root / "pkg/sub/mix.py").write_bytes(start["pkg/sub/mix.py"] + b"# local edit\r\n")
    before = _contents(root)
    with pytest.raises(applier.PatchError, match=r"pkg/sub/mix.py: modified"):
        applier.run(root, action, specs)
    assert _contents(root) == before


def test_missing_file_and_empty_directory_are_refused(setup: tuple[Path, Path], applier: ModuleType) -> None:
    root, spec_dir = setup
    specs = applier.load_specs(spec_dir)
    (root / "pkg/gen.py").unlink()
    with pytest.raises(applier.PatchError, match=r"pkg/gen.py: missing"):
        applier.run(root, "apply", specs)
    assert (root / "pkg/sub/mix.py").read_bytes() == PRISTINE["pkg/sub/mix.py"]
    with pytest.raises(applier.PatchError, match="not a Fast-dLLM checkout"):
        applier.run(root / "pkg", "apply", specs)


def test_failed_write_puts_back_written_files(
    setup: tuple[Path, Path], applier: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All or nothing per checkout, even when the disk fails halfway."""
    root, spec_dir = setup
    specs = applier.load_specs(spec_dir)
    real = applier._write_atomic
    calls = []

    def flaky(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(applier, "_write_atomic", flaky)
    with pytest.raises(OSError, match="disk full"):
        applier.run(root, "apply", specs)
    assert _contents(root) == PRISTINE
    assert not list(root.rglob("*.lrd-tmp"))


def test_malformed_specs_are_rejected(applier: ModuleType) -> None:
    unmarked = {"pkg/gen.py": [{"before_line": 1, "lines": ["import ours"]}]}
    with pytest.raises(ValueError, match="must end with"):
        applier.spec_from_dict(_spec_dict(unmarked), "bad")
    descending = {
        "pkg/gen.py": [
            {"before_line": 3, "lines": ["a  # lrd-plugin"]},
            {"before_line": 1, "lines": ["b  # lrd-plugin"]},
        ]
    }
    with pytest.raises(ValueError, match="ascending"):
        applier.spec_from_dict(_spec_dict(descending), "bad")
    with pytest.raises(ValueError, match="format"):
        applier.spec_from_dict({**_spec_dict(), "format": "unified-diff"}, "bad")
    past_end = applier.spec_from_dict(
        _spec_dict({"pkg/gen.py": [{"before_line": 99, "lines": ["a  # lrd-plugin"]}]}), "x"
    )
    with pytest.raises(applier.PatchError, match="past the end"):
        applier.insert_lines(PRISTINE["pkg/gen.py"], past_end.files[0])


def test_command_line(setup: tuple[Path, Path]) -> None:
    """Runs as a script: exit 0 when done or nothing to do, 1 (and a message) when refused."""
    root, spec_dir = setup

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(APPLY), "--spec-dir", str(spec_dir), *args, str(root)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    assert "pristine" in cli("--check").stdout
    first = cli()
    assert first.returncode == 0 and "patched pkg/gen.py" in first.stdout
    second = cli()
    assert second.returncode == 0 and "already patched" in second.stdout
    (root / "pkg/gen.py").write_bytes(b"something else\n")
    refused = cli("--revert")
    assert refused.returncode == 1 and "refused" in refused.stderr and "Nothing was written" in refused.stderr
    assert (root / "pkg/sub/mix.py").read_bytes() == PATCHED["pkg/sub/mix.py"]
