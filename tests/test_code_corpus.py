"""The stdlib code corpus: module list, a deterministic disjoint split, and the byte-level BPE."""

from __future__ import annotations

import json
import platform
import sys

import pytest

pytest.importorskip("tokenizers")

from lrd_plugin.code_corpus import (
    EXCLUDED_DIRS,
    build_tokenizer,
    copy_modules,
    corpus_metadata,
    list_modules,
    load_split,
    split_of_path,
    stdlib_root,
)
from lrd_plugin.models import BPETokenizer, CharTokenizer, load_tokenizer
from lrd_plugin.models.tokenizer import DEFAULT_SPECIALS


@pytest.fixture(scope="module")
def tokenizer() -> BPETokenizer:
    return build_tokenizer(2048)


def test_split_rule_is_a_stable_hash_of_the_relative_path() -> None:
    # Pinned values: the rule must not change silently (a change would move modules between splits).
    assert split_of_path("json/decoder.py") == split_of_path("json/decoder.py")
    pinned = {path: split_of_path(path) for path in ("functools.py", "decimal.py", "json/decoder.py", "ast.py")}
    assert pinned == {"functools.py": "test", "decimal.py": "test", "json/decoder.py": "train", "ast.py": "train"}
    with pytest.raises(ValueError, match="relative"):
        split_of_path("/usr/lib/python3.11/ast.py")


def test_splits_are_disjoint_cover_the_modules_and_hold_about_a_tenth() -> None:
    modules = list_modules()
    train, test = load_split("train"), load_split("test")
    paths = {f.path for f in modules}
    assert {f.path for f in train}.isdisjoint(f.path for f in test)
    assert {f.path for f in train} | {f.path for f in test} <= paths
    assert len(modules) > 300  # the standard library is there
    assert 0.05 < len(test) / len(modules) < 0.15
    assert [f.path for f in load_split("test")] == [f.path for f in test]  # deterministic
    for f in test:
        assert split_of_path(f.path) == "test"
    with pytest.raises(ValueError, match="split"):
        load_split("validation")


def test_no_test_module_text_is_in_training() -> None:
    train, test = load_split("train"), load_split("test")
    train_texts = [f.text for f in train]
    train_set = set(train_texts)
    for f in test:
        assert f.text not in train_set
        if len(f.text) > 200:  # a whole held-out module never appears inside a training file
            assert not any(f.text in text for text in train_texts), f.path


def test_excluded_and_generated_files_are_left_out() -> None:
    for f in list_modules():
        directories = f.path.split("/")[:-1]
        assert not set(directories) & EXCLUDED_DIRS, f.path
        assert not f.path.startswith("_sysconfigdata"), f.path
        assert f.path != "pydoc_data/topics.py"
        assert not (f.path.startswith("encodings/") and "gencodec.py" in f.text[:1000]), f.path
        assert "\r" not in f.text
    assert (stdlib_root() / "pydoc_data" / "topics.py").exists()  # it exists; it is left out on purpose


def test_metadata_records_the_python_version_and_split_digests(tokenizer: BPETokenizer) -> None:
    meta = corpus_metadata()
    assert meta["python_version"] == platform.python_version()
    assert meta["train"]["files"] == len(load_split("train")) and meta["test"]["files"] == len(load_split("test"))
    assert tokenizer.metadata["python_version"] == platform.python_version()
    assert tokenizer.metadata["test"]["digest"] == meta["test"]["digest"]


def test_tokenizer_round_trips_every_held_out_file_exactly(tokenizer: BPETokenizer) -> None:
    assert tokenizer.vocab_size == 2048
    assert [tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id, tokenizer.mask_id] == [0, 1, 2, 3]
    for f in load_split("test"):
        ids = tokenizer.encode(f.text)
        assert ids[0] == tokenizer.bos_id and min(ids[1:]) >= len(DEFAULT_SPECIALS)
        assert tokenizer.decode(ids) == f.text, f.path


def test_tokenizer_edge_cases(tokenizer: BPETokenizer) -> None:
    tricky = "x = '<mask>' + \"<eos>\"\n\tif y:\n  \x0c\n        return 'é—ü'  \n\n\n   "
    ids = tokenizer.encode(tricky, add_bos=False)
    assert tokenizer.mask_id not in ids and tokenizer.eos_id not in ids  # names in text are text
    assert tokenizer.decode(ids) == tricky
    kept = tokenizer.decode([tokenizer.bos_id, *ids, tokenizer.eos_id], skip_special=False)
    assert kept == "<bos>" + tricky + "<eos>"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([tokenizer.vocab_size])
    # No token crosses a line break: lines tokenise alone as in their text.
    text = load_split("test")[0].text
    lines = text.split("\n")
    by_line = [t for line in lines[:-1] for t in tokenizer.encode(line + "\n", add_bos=False)]
    by_line += tokenizer.encode(lines[-1], add_bos=False)
    assert by_line == tokenizer.encode(text, add_bos=False)
    pieces = ["a = 1\n", "    b\n"]
    assert tokenizer.encode_lines(pieces) == [tokenizer.encode(s, add_bos=False) for s in pieces]


def test_save_load_and_dispatch_by_type(tokenizer: BPETokenizer, tmp_path) -> None:
    tokenizer.save(tmp_path / "bpe")
    payload = json.loads((tmp_path / "bpe" / "tokenizer.json").read_text())
    assert payload["type"] == "bpe" and payload["metadata"]["python_version"] == platform.python_version()
    loaded = load_tokenizer(tmp_path / "bpe")
    assert isinstance(loaded, BPETokenizer)
    sample = load_split("test")[1].text
    assert loaded.encode(sample) == tokenizer.encode(sample)
    CharTokenizer.default().save(tmp_path / "char")
    assert isinstance(load_tokenizer(tmp_path / "char"), CharTokenizer)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "tokenizer.json").write_text(json.dumps({"type": "wordpiece"}))
    with pytest.raises(ValueError, match="tokenizer type"):
        load_tokenizer(tmp_path / "odd")


def test_bpe_training_is_deterministic() -> None:
    files = load_split("train")[:40]
    first, second = build_tokenizer(600, files=files), build_tokenizer(600, files=files)
    assert first.backend.to_str() == second.backend.to_str()


def test_missing_library_names_the_extra(tokenizer: BPETokenizer, tmp_path, monkeypatch) -> None:
    tokenizer.save(tmp_path)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # as if the [code] extra were not installed
    with pytest.raises(ImportError, match=r"lrd-plugin\[code\]"):
        BPETokenizer.load(tmp_path)


def test_copied_modules_are_the_same_corpus(tmp_path) -> None:
    """A copy for a machine with another Python holds the same files, so the same split and digests."""
    source = tmp_path / "stdlib"
    for path, text in {
        "a.py": "x = 1\n",
        "pkg/__init__.py": "",
        "pkg/b.py": "def f():\n    return 2\n",
        "pkg/tests/t.py": "y = 3\n",  # a test suite: left out
        "bad.py": "def (:\n",  # does not parse: left out
        "notes.txt": "not python\n",
    }.items():
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text(text)
    count = copy_modules(tmp_path / "copy", source)
    assert count == 3
    assert list_modules(tmp_path / "copy") == list_modules(source)
    assert corpus_metadata(tmp_path / "copy") == corpus_metadata(source)
    with pytest.raises(FileExistsError, match="destination"):
        copy_modules(tmp_path / "copy", source)
