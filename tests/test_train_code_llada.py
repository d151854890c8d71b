"""The code model's training script: a smoke run on a small slice of the real standard library, resume,
then `load_model` and one `lrd generate` call on what it wrote; and `--model code`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")

from benchmarks import train_code_llada as train
from lrd_plugin import cli, loading
from lrd_plugin import code_tasks as ct
from lrd_plugin.code_corpus import list_modules, split_of_path
from lrd_plugin.loading import load_model
from lrd_plugin.models import BPETokenizer, LLaDAModel

TINY = ["--d-model", "32", "--n-layers", "2", "--n-heads", "4", "--mlp-hidden-size", "64", "--vocab-size", "400"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A few real stdlib modules of each split, copied under their own relative paths (so the split
    rule places them as in the full corpus), each with documented functions to fill."""
    root = tmp_path_factory.mktemp("stdlib")
    picked = {"train": 0, "test": 0}
    wanted = {"train": 10, "test": 3}
    for source in sorted(list_modules(), key=lambda f: len(f.text)):
        split = split_of_path(source.path)
        if len(source.text) < 3000 or picked[split] >= wanted[split]:
            continue
        if not any(f.docstring for f in ct.functions(source.text)):
            continue
        target = root / source.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.text, encoding="utf-8")
        picked[split] += 1
        if picked == wanted:
            break
    assert picked == wanted
    return str(root)


def run(args: list[str], corpus: str, tmp: Path) -> None:
    common = ["--stdlib-root", corpus, "--out", str(tmp / "out"), "--checkpoint", str(tmp / "ckpt.pt")]
    common += ["--batch-size", "4", "--window", "64", "--body-gen-mix", "64:1", "--left-budget", "192"]
    common += ["--right-budget", "32", "--eval-n", "2", "--eval-windows", "4", "--log-every", "1", "--no-bf16"]
    common += ["--eval-body-length", "64"]
    train.main([*TINY, *common, *args])


def test_smoke_run_resume_load_and_generate(corpus: str, tmp_path: Path, capsys, monkeypatch) -> None:
    run(["--steps", "3", "--attention-mix", "full:0.5,block:0.5", "--seed", "1"], corpus, tmp_path)
    out = tmp_path / "out"
    log = json.loads((out / "train_log.json").read_text())
    assert log["steps"] == 3 and len(log["loss"]) == 3
    assert log["n_parameters"] < 200_000 and log["python_version"]
    results = log["eval"]["results"]
    assert set(results["full"]) == set(ct.TASKS) and set(results["block"]) == {"body"}
    for entry in results["full"].values():
        assert entry["model"]["n"] == 2 and 0.0 <= entry["model"]["token_accuracy"] <= 1.0
        assert entry["trivial"]["exact"] == 0.0
    assert 0.0 < log["eval"]["windows"]["median_top1_confidence"] < 0.99  # an untrained model is unsure
    assert (tmp_path / "ckpt.pt").exists()

    # --resume continues the saved run: same tokenizer, step count carried on.
    run(["--steps", "5", "--resume", "--seed", "1"], corpus, tmp_path)
    log = json.loads((out / "train_log.json").read_text())
    assert log["steps"] == 5 and log["resumed"][0]["step"] == 3
    assert [e["step"] for e in log["loss"]] == [1, 2, 3, 4, 5]

    loaded = load_model(str(out))
    assert isinstance(loaded.tokenizer, BPETokenizer)
    assert loaded.tokenizer.metadata["python_version"] == log["python_version"]
    capsys.readouterr()
    code = cli.main(["generate", "--model", str(out), "--prompt", "def f(x):\n", "--gen-length", "32", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["prompt"] == "def f(x):\n" and isinstance(record["text"], str) and record["nfe"] >= 1

    # --init-from starts a new run from the saved model: its sizes win over the command line's, and
    # with a zero learning rate one step leaves its weights and tokenizer as they were; the weights
    # may be saved in shards (--max-shard-mb) and a sharded directory is a valid --init-from.
    before = LLaDAModel.from_pretrained(out).state_dict()
    source = out
    for name, shards in (("again", ["--max-shard-mb", "0.1"]), ("third", [])):
        run(["--steps", "1", "--lr", "0", "--d-model", "64", "--init-from", str(source),
             "--out", str(tmp_path / name), *shards], corpus, tmp_path)  # fmt: skip
        again = load_model(str(tmp_path / name))
        new_log = json.loads((tmp_path / name / "train_log.json").read_text())
        assert new_log["init_from"] == str(source)
        assert new_log["init_from_log"] == json.loads((source / "train_log.json").read_text())  # history kept
        assert again.tokenizer.payload() == loaded.tokenizer.payload()
        after = LLaDAModel.from_pretrained(tmp_path / name)
        for key, value in after.state_dict().items():
            assert torch.equal(before[key], value), key
        source = tmp_path / name
    assert len(list((tmp_path / "again").glob("model-*-of-*.safetensors"))) > 1

    # `--model code` resolves to the package's code_model directory when one is there.
    shipped = tmp_path / "code_model"
    shutil.copytree(out, shipped)
    monkeypatch.setattr(loading, "CODE_DIR", shipped)
    assert load_model("code").description.startswith("embedded code model")


def test_model_code_without_a_shipped_model_says_how_to_train_it(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(loading, "CODE_DIR", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match=r"not shipped yet.*train_code_llada\.py"):
        load_model("code")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "--model", "code", "--prompt", "def f():\n"])
    assert exit_info.value.code == 2
    assert "not shipped yet" in capsys.readouterr().err


def test_bad_mixes_are_refused(corpus: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run(["--steps", "1", "--data-mix", "window:0.5,poetry:0.5"], corpus, tmp_path)
    with pytest.raises(SystemExit):
        run(["--steps", "1", "--body-gen-mix", "48:1"], corpus, tmp_path)
    with pytest.raises(SystemExit):
        run(["--steps", "1", "--max-shard-mb", "0"], corpus, tmp_path)


def test_init_from_needs_a_saved_model_and_excludes_resume(corpus: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        run(["--steps", "1", "--init-from", str(tmp_path / "absent")], corpus, tmp_path)
    assert "--init-from" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(["--steps", "1", "--init-from", str(tmp_path), "--resume"], corpus, tmp_path)
    assert "exclude each other" in capsys.readouterr().err
