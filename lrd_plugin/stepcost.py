"""Measure what one LRD step costs on top of a forward pass, side by side in one process.

LRD's extra work per step (log-softmax, entropy, KL, the nucleus mixture) is only worth it if it
is small against the forward it accompanies; this puts a number on that for a given model.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .adapters import Denoiser
from .config import LRDConfig
from .sampler import LRDSampler, Phase


@dataclass
class StepCost:
    forward_ms: float  # one forward over prompt + block
    base_step_ms: float  # the commit policy alone (what the base sampler does per step)
    lrd_step_ms: float  # a full LRD Phase-2 step: policy + KL + entropy + mixture
    block_length: int
    sequence_length: int

    @property
    def extra_ms(self) -> float:
        return self.lrd_step_ms - self.base_step_ms

    @property
    def extra_over_forward(self) -> float:
        return self.extra_ms / self.forward_ms

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "extra_ms": self.extra_ms, "extra_over_forward": self.extra_over_forward}


@torch.no_grad()
def measure_step_cost(
    model: Denoiser,
    *,
    prompt_length: int = 32,
    block_length: int = 32,
    config: LRDConfig | None = None,
    repeats: int = 30,
    seed: int = 0,
) -> StepCost:
    """Median wall time of a forward, a base-policy step and an LRD step on the same logits."""
    config = config or LRDConfig()
    table = model.embedding_table()
    g = torch.Generator().manual_seed(seed)
    vocab = table.shape[0]
    prompt = torch.randint(0, vocab, (1, prompt_length), generator=g).to(table.device)
    prompt[prompt == model.mask_id] = (model.mask_id + 1) % vocab
    x = torch.cat([prompt, prompt.new_full((1, block_length), model.mask_id)], dim=1)
    inputs = F.embedding(x, table)
    logits, _ = model.forward(inputs)
    block = logits[:, prompt_length - model.shift : prompt_length - model.shift + block_length]
    previous = block.roll(1, dims=-1)  # a different earlier prediction, so the KL is non-trivial

    def forward() -> None:
        model.forward(inputs)

    def stepper(cfg: LRDConfig) -> Callable[[], None]:
        sampler = LRDSampler(cfg.replace(tau_decode=0.0), table, model.mask_id)
        from .mixture import log_probs

        prev = log_probs(previous, model.mask_id)

        def step() -> None:
            state = sampler.init_block(x[:, prompt_length:], block_length)
            state.phase.fill_(int(Phase.DECODE))
            state.prev_logp = prev
            sampler.step(state, block)

        return step

    base_cfg = LRDConfig.base(policy=config.policy, threshold=config.threshold, factor=config.factor)
    return StepCost(
        forward_ms=_median_ms(forward, repeats, table.device),
        base_step_ms=_median_ms(stepper(base_cfg), repeats, table.device),
        lrd_step_ms=_median_ms(stepper(config.replace(early_stop=True)), repeats, table.device),
        block_length=block_length,
        sequence_length=x.shape[1],
    )


def _median_ms(fn: Callable[[], None], repeats: int, device: torch.device) -> float:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)
