"""The `lrd` command end to end (in-process through `main`, and once as a real subprocess)."""

import json
import subprocess
import sys

import pytest

from lrd_plugin import LRDConfig, generate
from lrd_plugin.cli import main
from lrd_plugin.loading import load_model
from lrd_plugin.models import build_default_random_model


def test_help_lists_the_commands():
    out = subprocess.run([sys.executable, "-m", "lrd_plugin.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert all(cmd in out.stdout for cmd in ("generate", "demo", "config"))


def test_generate_json_from_a_saved_model_directory(tmp_path, capsys):
    model, tokenizer = build_default_random_model(seed=1)
    model.save_pretrained(tmp_path)
    tokenizer.save(tmp_path)
    LRDConfig(r_f=0.2, policy="threshold").save(tmp_path / "lrd.yaml")
    code = main(
        [
            "generate",
            "--model",
            str(tmp_path),
            "--config",
            str(tmp_path / "lrd.yaml"),
            "--prompt",
            "ab",
            "--prompt",
            "a longer prompt",
            "--gen-length",
            "16",
            "--block-length",
            "8",
            "--json",
            "--kl-trace",
        ]
    )
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in records] == ["ab", "a longer prompt"]
    for r in records:
        assert 1 <= r["nfe"] <= 2 * (20 + 8) and len(r["refine_steps"]) == 2
        assert len(r["kl_trace"]) == 2 and r["kl_trace"][0][0] is None  # no previous prediction: KL = inf
        assert "<mask>" not in r["text"]


def test_config_overrides_round_trip_through_yaml(tmp_path, capsys):
    assert main(["config", "--set", "policy=threshold", "--set", "threshold=0.8", "--set", "mixing=false"]) == 0
    cfg = LRDConfig.from_yaml(capsys.readouterr().out)
    assert cfg == LRDConfig(policy="threshold", threshold=0.8, mixing=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["config", "--set", "r_f=3"], "r_f must be in (0.0, 1.0]"),
        (["config", "--set", "nonsense"], "--set expects FIELD=VALUE"),
        (["generate", "--prompt", "x", "--gen-length", "10", "--block-length", "4"], "multiple of block_length"),
        (["generate", "--model", "/nonexistent", "--prompt", "x"], "--model must be 'default' or a directory"),
        (["generate"], "at least one --prompt"),
        (["generate", "--prompt", "x", "--attention", "sideways"], "invalid choice: 'sideways'"),
        (["bench", "--offset", "-1"], "--offset: must be a non-negative integer, got -1"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_demo_compares_samplers_and_measures_the_step_cost(capsys):
    assert main(["demo", "--gen-length", "16", "--block-length", "8", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"].startswith("embedded default")
    names = [row["sampler"] for row in result["rows"]]
    assert any(n.startswith("base") for n in names) and any(n.startswith("LRD") for n in names)
    base = next(r for r in result["rows"] if r["sampler"].startswith("base: lowest-entropy"))
    assert base["nfe"] == 16 and base["phase1_steps"] == 0
    cost = result["step_cost"]
    assert (
        cost["forward_ms"] > 0
        and cost["lrd_step_ms"] > 0
        and cost["extra_over_forward"]
        == pytest.approx((cost["lrd_step_ms"] - cost["base_step_ms"]) / cost["forward_ms"])
    )


def test_generate_in_block_attention_decodes_as_the_decoder_does(tmp_path, capsys):
    """`--attention block` runs the model in its block-diffusion mode: the command's tokens are the
    decoder's with a block-mode denoiser, and differ from full attention's on a random model."""
    model, tokenizer = build_default_random_model(seed=2)
    model.save_pretrained(tmp_path)
    tokenizer.save(tmp_path)
    argv = ["generate", "--model", str(tmp_path), "--prompt", "a prompt", "--gen-length", "16", "--block-length", "8"]
    argv += ["--set", "early_stop=false", "--json"]
    texts = {}
    for attention in ("full", "block"):
        assert main([*argv, "--attention", attention]) == 0
        texts[attention] = json.loads(capsys.readouterr().out)["text"]
    loaded = load_model(str(tmp_path), block_size=8)
    assert loaded.denoiser.block_size == 8
    ids, mask = loaded.encode_batch(["a prompt"])
    config = LRDConfig(early_stop=False)
    out = generate(
        loaded.denoiser, ids, attention_mask=mask, gen_length=16, block_length=8, config=config, cache="prefix"
    )
    assert texts["block"] == loaded.decode(out.generated[0].tolist())
    assert texts["block"] != texts["full"]
