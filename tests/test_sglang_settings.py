"""The ``--dllm-algorithm-config`` YAML of SGLang's ``--dllm-algorithm LRD`` (pure Python: no SGLang)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lrd_plugin.config import LRDConfig
from lrd_plugin.integrations.sglang import settings


def test_an_empty_yaml_is_the_package_default_with_low_confidences_threshold_over_the_block():
    config = settings.load(None)
    # SGLang decodes one block per round: the early stop covers the block
    assert config == LRDConfig(policy="threshold", threshold=settings.DEFAULT_THRESHOLD, early_stop_scope="block")
    assert settings.lrd_config({}) == config and settings.lrd_config(None) == config


def test_yaml_values_and_block_size_are_accepted(tmp_path: Path):
    path = tmp_path / "lrd.yaml"
    path.write_text("block_size: 32\nthreshold: 0.9\nr_f: 0.2\ntop_p: 1\nmixing: false\n")
    config = settings.load(path)
    assert (config.threshold, config.r_f, config.top_p, config.mixing) == (0.9, 0.2, 1, False)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"policy": "threshold"}, "'policy' is not accepted by LRD in SGLang"),
        ({"steps_per_block": 4}, "'steps_per_block' is not accepted"),
        ({"factor": 1.0}, "'factor' is not accepted"),
        ({"temperature": 0.5}, "'temperature' is not accepted"),
        ({"treshold": 0.9}, "unknown --dllm-algorithm-config key 'treshold' for LRD; allowed keys: .*'block_size'"),
        ({"early_stop_scope": "sequence"}, "early_stop_scope must be 'block'"),
        ({"block_size": True}, "block_size must be an integer >= 1"),
        ({"block_size": 0}, "block_size must be an integer >= 1"),
        ({"r_f": 0}, r"invalid --dllm-algorithm-config for LRD: r_f must be in \(0.0, 1.0\]"),
        ({"mixing": "yes"}, "invalid --dllm-algorithm-config for LRD: mixing must be of type bool"),
        ({1: 2}, "key 1 is not a name"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(values, message):
    with pytest.raises(ValueError, match=message):
        settings.lrd_config(values)


def test_bad_files_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="is not a file"):
        settings.load(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        settings.load(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("top_p: [\n")
    with pytest.raises(ValueError, match="is not valid YAML"):
        settings.load(tmp_path / "broken.yaml")
