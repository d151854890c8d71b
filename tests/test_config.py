"""LRDConfig: paper defaults, validation that names the field, and lossless round trips."""

import json

import pytest

from lrd_plugin import LRDConfig


def test_defaults_are_the_papers():
    cfg = LRDConfig()
    assert (cfg.top_p, cfg.r_f, cfg.tau_refine, cfg.tau_decode, cfg.max_refine_steps) == (0.9, 0.15, 0.1, 0.1, 20)
    assert cfg.alpha_form == "one_minus_entropy" and cfg.policy == "lowest_entropy" and cfg.temperature == 0.0
    assert cfg.refinement and cfg.mixing and cfg.early_stop and not cfg.is_base_policy
    assert LRDConfig.base().is_base_policy


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("top_p", 0.0, "(0.0, 1.0]"),
        ("top_p", 1.5, "(0.0, 1.0]"),
        ("r_f", 0.0, "(0.0, 1.0]"),
        ("r_f", -0.1, "(0.0, 1.0]"),
        ("r_f", 1.01, "(0.0, 1.0]"),
        ("alpha_form", "eq5", "['one_minus_entropy', 'entropy']"),
        ("nucleus_cap", 0, ">= 1"),
        ("tau_refine", -0.1, "[0.0, inf]"),
        ("tau_decode", -1.0, "[0.0, inf]"),
        ("max_refine_steps", -1, ">= 0"),
        ("early_stop_scope", "global", "['block', 'sequence']"),
        ("policy", "random", "['lowest_entropy', 'low_confidence', 'threshold', 'factor']"),
        ("threshold", 1.2, "[0.0, 1.0]"),
        ("factor", 0.0, "(0.0, inf)"),
        ("factor", float("inf"), "(0.0, inf)"),
        ("temperature", -0.5, "[0.0, inf)"),
        ("temperature", float("inf"), "[0.0, inf)"),  # NaN scores: the mask token, forever
        ("stable_slack", float("inf"), "[0.0, inf)"),
        ("mix_min_confidence", 1.5, "[0.0, 1.0]"),
        ("mix_min_confidence", -0.1, "[0.0, 1.0]"),
    ],
)
def test_invalid_values_name_the_field_and_the_allowed_values(field, value, allowed):
    with pytest.raises(ValueError) as err:
        LRDConfig(**{field: value})
    assert field in str(err.value) and allowed in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("top_p", "0.9"),
        ("r_f", None),
        ("nucleus_cap", 2.5),
        ("mixing", 1),
        ("policy", 3),
        ("early_stop", "yes"),
        ("max_refine_steps", True),
        ("temperature", float("nan")),
        ("tau_decode", 10**400),  # no float holds it
    ],
)
def test_wrong_types_are_rejected(field, value):
    with pytest.raises(TypeError, match=field):
        LRDConfig(**{field: value})


def test_yamls_string_exponent_gets_a_hint():
    with pytest.raises(TypeError, match=r"tau_decode must be of type float \(YAML reads a number like 1e-3"):
        LRDConfig.from_yaml("tau_decode: 1e-3\n")
    assert LRDConfig.from_yaml("tau_decode: 1.0e-3\n").tau_decode == 0.001


def test_a_choice_of_the_wrong_type_names_the_allowed_values():
    with pytest.raises(TypeError, match=r"policy must be of type str: one of \['lowest_entropy', "):
        LRDConfig(policy=None)


def test_steps_per_block_belongs_to_the_fixed_schedule():
    assert LRDConfig(policy="low_confidence", steps_per_block=4).steps_per_block == 4
    with pytest.raises(ValueError, match="steps_per_block"):
        LRDConfig(policy="threshold", steps_per_block=4)
    with pytest.raises(ValueError, match="steps_per_block must be an integer >= 1"):
        LRDConfig(policy="low_confidence", steps_per_block=0)


def test_unknown_keys_are_rejected_with_the_list_of_fields():
    with pytest.raises(ValueError, match=r"unknown LRDConfig field.*'rf'.*allowed fields"):
        LRDConfig.from_dict({"rf": 0.2})


def test_dict_json_and_yaml_round_trip(tmp_path):
    cfg = LRDConfig(
        r_f=0.2,
        alpha_form="entropy",
        policy="low_confidence",
        steps_per_block=8,
        temperature=0.5,
        early_stop_scope="sequence",
        mixing=False,
    )
    assert LRDConfig.from_dict(cfg.to_dict()) == cfg
    assert LRDConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert LRDConfig.from_yaml(cfg.to_yaml()) == cfg
    for name in ("lrd.yaml", "lrd.json"):
        cfg.save(tmp_path / name)
        assert LRDConfig.load(tmp_path / name) == cfg


def test_partial_yaml_keeps_defaults_and_replace_validates():
    cfg = LRDConfig.from_yaml("r_f: 0.1\npolicy: threshold\nthreshold: 0.8\n")
    assert cfg == LRDConfig(r_f=0.1, policy="threshold", threshold=0.8)
    with pytest.raises(ValueError, match="r_f"):
        cfg.replace(r_f=2.0)
