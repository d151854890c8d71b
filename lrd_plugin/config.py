"""`LRDConfig`: every knob of Latent Refinement Decoding in one validated, serialisable object.

Defaults are the paper's (arXiv 2510.11052, App. A): top-p 0.9, r_f 0.15 (the paper varies it in
[0.1, 0.2]), tau_refine = tau_decode = 0.1, at most 20 refinement steps, greedy decoding and one
lowest-entropy commit per step -- except the early stop. The paper's rule (commit every open
position once the mean KL is below tau_decode) fires while predictions are stable but wrong and
cost 7 to 37 points per task on the project's benchmark; the default is the ``per_position`` rule over the
whole answer with a 0.999 confidence gate, chosen on the evidence in the README.
`LRDConfig.paper()` gives the paper's rule for reproduction.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POLICIES = ("lowest_entropy", "low_confidence", "threshold", "factor")
ALPHA_FORMS = ("one_minus_entropy", "entropy")
EARLY_STOP_SCOPES = ("block", "sequence")
EARLY_STOP_RULES = ("paper", "kl_gated", "per_position")
REFINE_COMMITS = ("auto", "none", "sure", "engine")
LATER_GATES = ("auto", "early_stop")
LATER_COMMITS = ("auto", "block_end", "every_step")
PARALLEL_POLICIES = ("threshold", "factor")  # commit rules that commit several tokens per forward
CHOICES = {
    "alpha_form": ALPHA_FORMS,
    "refine_commit": REFINE_COMMITS,
    "early_stop_scope": EARLY_STOP_SCOPES,
    "early_stop_rule": EARLY_STOP_RULES,
    "later_gate": LATER_GATES,
    "later_commit": LATER_COMMITS,
    "policy": POLICIES,
}


@dataclass(frozen=True)
class LRDConfig:
    """Settings of the LRD sampler.

    Mixture (Eq. 3-4):
        top_p: nucleus mass of the previous prediction that feeds the mixture, in (0, 1].
        r_f: maximum mixing ratio alpha, in (0, 1].
        alpha_form: ``one_minus_entropy`` is Eq. 4, alpha = r_f * (1 - H/log|V|) (confident positions
            get more token content); ``entropy`` is Appendix D's alpha = r_f * H/log|V|.
        nucleus_cap: at most this many tokens enter the nucleus; keeps the mixture
            O(B*L*k*d) instead of a dense [B*L, V] @ [V, d] product. The nucleus is exact whenever
            it fits under the cap.
    Phases and KL control (Eq. 6, Sec. 3.2):
        tau_refine: Phase 1 (refine; commit what ``refine_commit`` says) ends when the block's mean
            KL between successive predictions drops below this.
        max_refine_steps: or after this many refinement forwards.
        refine_commit: what Phase 1 commits. ``auto`` (default): ``engine`` under a parallel
            commit rule (``threshold``, ``factor``: an engine that commits in parallel), ``none``
            under a one-token-per-step policy. ``none`` (the paper): nothing. ``engine``: what the
            commit rule itself commits on that forward (the threshold rule's forced best position
            included) -- which is Phase 2, so the block starts there: the loop never waits a
            forward for a KL where the engine would commit, and the open rest keep their mixtures.
            ``sure``: only the positions whose confidence reaches ``threshold`` (the threshold rule
            without its forced best position). Under ``sure`` and ``engine`` the early stop's
            per-position tests also act in Phase 1, so a block that the commits empty is done, and with
            sequence scope the previous block's last prediction of this block is its first KL's
            reference, so a block that settled while the previous one decoded needs no refinement
            forward to show it.
        tau_decode: in Phase 2, early stop when the mean KL drops below this.
        early_stop_scope: ``block`` finalises the current block; ``sequence`` additionally finishes
            the whole answer when predictions have settled over every remaining position.
        early_stop_rule: what the early stop commits once it fires. ``paper`` (Sec. 3.2): every open
            position it covers, each to its prediction. ``kl_gated``: only the covered positions that
            are themselves stable (own KL < tau_decode) and confident (probability >=
            early_stop_confidence), in parallel; the others keep refining, so an unstable or
            unconfident position is never finalised by the stop. ``per_position``: the same test
            per position without waiting for the block's mean KL: every Phase-2 step also commits
            each covered position that is stable and confident (a stable position need not wait for
            an unstable neighbour).
        early_stop_confidence: the ``kl_gated`` and ``per_position`` confidence gate, in [0, 1].
        later_gate: the gate of the sequence-scope stop for positions after the current block.
            ``auto`` (default): under a parallel rule the lower of early_stop_confidence and the
            lowest confidence the rule commits on sight (``threshold``; ``1 - factor /
            (block_length + 1)``), so a settled later position the engine would commit at its block's
            first forward is committed now; early_stop_confidence under a one-token-per-step
            policy. ``early_stop``: early_stop_confidence everywhere.
        later_commit: when the sequence-scope stop may commit positions after the current block.
            ``auto`` (default): ``block_end`` under a parallel rule (the composed mode), ``every_step``
            under a one-token-per-step policy. ``block_end``: only on the forward that finishes the
            block, so a committed later tail never changes the context of the block the engine is
            still decoding (the dual cache's full forwards come at block starts, so there it holds by
            construction). ``every_step``: on any step (the default before stop 40), so a tail that
            settles early needs no later block's forwards.
        stable_slack: with ``early_stop``, every Phase-2 step (and Phase-1 step, where Phase 1
            commits) also commits each open block position that is stable (own KL < tau_decode) and
            whose error 1 - p is at most ``stable_slack`` times the error 1 - ``threshold`` that the
            threshold rule accepts from any position (gate 1 - slack * (1 - threshold), at least 0:
            a slack of 1 / (1 - threshold) or more commits every stable position). The gate follows
            the engine's threshold, so it moves with a model's confidence scale as the user's
            threshold does; 0 turns it off; finite.
        mix_min_confidence: an open position whose top-1 probability is below this gets the bare
            mask instead of its mixture. 0.5 (default): only a prediction with a majority token is
            fed back, a rule that needs no model's confidence scale. Where the model has only a
            guess, its mixture feeds the guess back; on the uncertain code model that tipped bodies
            into repetition that never emits EOS (README, the code model). 0 is Eq. 3 for every
            open position (``paper()``). In [0, 1].
    Ablations (paper Table 3): refinement, mixing, early_stop; all three off gives the base policy.
    Commit policy (Phase 2):
        policy: ``lowest_entropy`` (the paper: one lowest-entropy token per step),
            ``low_confidence`` (LLaDA: a fixed schedule of the most confident tokens),
            ``threshold`` (Fast-dLLM: every token with confidence >= threshold, at least one),
            ``factor`` (Fast-dLLM's factor rule).
        steps_per_block: ``low_confidence`` only; None means one token per step.
        threshold, factor: parameters of the Fast-dLLM rules; ``threshold`` is also the bar of
            ``refine_commit="sure"`` and the reference of ``stable_slack`` under every policy.
        temperature: 0 is greedy; > 0 (finite) draws tokens by Gumbel-max sampling, as the base
            samplers do.
    """

    top_p: float = 0.9
    r_f: float = 0.15
    alpha_form: str = "one_minus_entropy"
    nucleus_cap: int = 128
    tau_refine: float = 0.1
    tau_decode: float = 0.1
    max_refine_steps: int = 20
    refine_commit: str = "auto"
    early_stop_scope: str = "sequence"
    early_stop_rule: str = "per_position"
    early_stop_confidence: float = 0.999
    later_gate: str = "auto"
    later_commit: str = "auto"
    stable_slack: float = 0.0
    mix_min_confidence: float = 0.5
    refinement: bool = True
    mixing: bool = True
    early_stop: bool = True
    policy: str = "lowest_entropy"
    steps_per_block: int | None = None
    threshold: float = 0.9
    factor: float = 1.0
    temperature: float = 0.0

    def __post_init__(self) -> None:
        self._check_types()
        _in_range("top_p", self.top_p, 0.0, 1.0, low_open=True)
        _in_range("r_f", self.r_f, 0.0, 1.0, low_open=True)
        for name, allowed in CHOICES.items():
            _choice(name, getattr(self, name), allowed)
        _at_least("nucleus_cap", self.nucleus_cap, 1)
        _in_range("tau_refine", self.tau_refine, 0.0, math.inf)
        _in_range("tau_decode", self.tau_decode, 0.0, math.inf)
        _at_least("max_refine_steps", self.max_refine_steps, 0)
        _in_range("early_stop_confidence", self.early_stop_confidence, 0.0, 1.0)
        _in_range("stable_slack", self.stable_slack, 0.0, math.inf, high_open=True)
        _in_range("mix_min_confidence", self.mix_min_confidence, 0.0, 1.0)
        if self.steps_per_block is not None:
            _at_least("steps_per_block", self.steps_per_block, 1)
            if self.policy != "low_confidence":
                raise ValueError(
                    f"steps_per_block is only used by policy='low_confidence', got policy={self.policy!r}; "
                    "leave steps_per_block=None"
                )
        _in_range("threshold", self.threshold, 0.0, 1.0)
        _in_range("factor", self.factor, 0.0, math.inf, low_open=True, high_open=True)
        _in_range("temperature", self.temperature, 0.0, math.inf, high_open=True)

    def _check_types(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "bool":
                ok = isinstance(value, bool)
            elif field.type == "int":
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif field.type == "int | None":
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
            elif field.type == "float":
                ok = isinstance(value, (int, float)) and not isinstance(value, bool) and _is_a_float(value)
            else:
                ok = isinstance(value, str)
            if not ok:
                allowed = f": one of {list(CHOICES[field.name])}" if field.name in CHOICES else ""
                if field.type == "float" and isinstance(value, str) and _parses_as_float(value):
                    allowed = " (YAML reads a number like 1e-3 as a string: write 1.0e-3)"
                raise TypeError(f"{field.name} must be of type {field.type}{allowed}, got {value!r}")

    @property
    def is_base_policy(self) -> bool:
        """True when every LRD feature is off: the sampler then is exactly its commit policy."""
        return not (self.refinement or self.mixing or self.early_stop)

    def replace(self, **changes: Any) -> LRDConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @property
    def phase1_commits(self) -> str:
        """``refine_commit`` resolved: ``auto`` is ``engine`` under a parallel commit rule, else ``none``."""
        if self.refine_commit == "auto":
            return "engine" if self.policy in PARALLEL_POLICIES else "none"
        return self.refine_commit

    @property
    def later_commits_at(self) -> str:
        """``later_commit`` resolved: ``auto`` is ``block_end`` under a parallel commit rule, else
        ``every_step``."""
        if self.later_commit == "auto":
            return "block_end" if self.policy in PARALLEL_POLICIES else "every_step"
        return self.later_commit

    @property
    def commits_in_refinement(self) -> bool:
        """Whether Phase 1 commits anything (``refine_commit`` resolved to ``sure`` or ``engine``)."""
        return self.phase1_commits != "none"

    @classmethod
    def paper(cls, **changes: Any) -> LRDConfig:
        """The paper's settings, early stop included (its literal rule over the block; Phase 1 commits
        nothing; no stability-gated commits; Eq. 3's mixture at every open position)."""
        literal = {
            "early_stop_rule": "paper",
            "early_stop_scope": "block",
            "refine_commit": "none",
            "stable_slack": 0.0,
            "mix_min_confidence": 0.0,
        }
        return cls(**{**literal, **changes})

    @classmethod
    def base(cls, **changes: Any) -> LRDConfig:
        """The base sampler alone: refinement, mixing and early stop switched off."""
        return cls(**{"refinement": False, "mixing": False, "early_stop": False, **changes})

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRDConfig:
        if not isinstance(data, dict):
            raise TypeError(f"LRDConfig.from_dict expects a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LRDConfig field(s) {unknown}; allowed fields: {sorted(known)}")
        return cls(**data)

    def to_yaml(self) -> str:
        return _yaml().safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> LRDConfig:
        return cls.from_dict(_yaml().safe_load(text) or {})

    def save(self, path: str | Path) -> None:
        """Write JSON or YAML, chosen by the file suffix."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) if path.suffix == ".json" else self.to_yaml()
        path.write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> LRDConfig:
        path = Path(path)
        text = path.read_text()
        return cls.from_dict(json.loads(text)) if path.suffix == ".json" else cls.from_yaml(text)


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("YAML support needs PyYAML: pip install 'lrd-plugin[cli]'") from exc
    return yaml


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _at_least(name: str, value: int, low: int) -> None:
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_a_float(value: float) -> bool:
    """A number that a float holds (an int past 1e308 does not) and not NaN."""
    try:
        return not math.isnan(float(value))
    except OverflowError:
        return False


def _in_range(
    name: str, value: float, low: float, high: float, low_open: bool = False, high_open: bool = False
) -> None:
    ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lb, rb = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"{name} must be in {lb}{low}, {high}{rb}, got {value!r}")
