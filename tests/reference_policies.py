"""Plain, deliberately unoptimised reference implementations used as test oracles.

This module is written independently of the package's decoder so that the
optimised code can be checked against it token for token and NFE for NFE.
Everything here processes ONE sequence and favours explicit per-position
Python loops over vectorised tricks.

Contents
--------
* :func:`reference_generate` -- greedy semi-autoregressive masked-diffusion
  decoding (LLaDA / Fast-dLLM style) with four commit policies
  (``'low_confidence'``, ``'threshold'``, ``'factor'``, ``'lowest_entropy'``),
  optional prefix KV cache and optional Dream-style logit shift.
* :func:`reference_nucleus_mixture` -- the nucleus-embedding mixture for one
  position.
* Small helpers (:func:`position_stats`, :func:`low_confidence_schedule`,
  :func:`factor_commit_count`) that are exposed so tests can check the
  individual rules directly.

Model contract
--------------
``model(input_ids=ids, past_key_values=pkv, use_cache=flag)`` returns an object
with ``.logits`` of shape ``[1, L_in, V]`` and, when ``use_cache=True``,
``.past_key_values``: a tuple with one ``(K, V)`` pair per layer, each tensor
shaped ``[B, heads, L, head_dim]``.

Tie-breaking conventions (only relevant for exactly equal float32 values)
-------------------------------------------------------------------------
* ``x0`` is ``torch.argmax`` of the probabilities (first maximal index).
* When selecting the "most confident" positions, equal confidences are ordered
  by ascending absolute position; for "lowest entropy", equal entropies are
  likewise resolved towards the lower position.
* Comparisons against a threshold are made between a float32 tensor and a
  Python float, i.e. with torch's usual scalar promotion (the threshold is
  rounded to float32).
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = [
    "POLICIES",
    "factor_commit_count",
    "low_confidence_schedule",
    "position_stats",
    "reference_generate",
    "reference_nucleus_mixture",
]

POLICIES: tuple[str, ...] = ("low_confidence", "threshold", "factor", "lowest_entropy")

KVCache = tuple[tuple[torch.Tensor, torch.Tensor], ...]


# ---------------------------------------------------------------------------
# Per-position logit processing
# ---------------------------------------------------------------------------
def position_stats(logits_row: torch.Tensor, mask_id: int) -> tuple[int, torch.Tensor, torch.Tensor]:
    """Process the logits of ONE position.

    Steps: cast to float32, set the logit of ``mask_id`` to ``-inf`` (the mask
    token can never be predicted), ``p = softmax(logits)``, ``x0 = argmax p``,
    ``confidence = p[x0]`` and ``entropy = -sum_v p_v log p_v`` with
    ``0 * log 0`` treated as ``0``.

    Args:
        logits_row: ``[V]`` logits for a single position (any float dtype).
        mask_id: id of the mask token.

    Returns:
        ``(x0, confidence, entropy)`` where ``x0`` is a Python int and the other
        two are 0-d float32 tensors.
    """
    logits = logits_row.detach().to(torch.float32).clone()
    logits[mask_id] = float("-inf")
    p = torch.softmax(logits, dim=-1)
    x0 = int(torch.argmax(p).item())
    confidence = p[x0]
    p_log_p = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
    entropy = -p_log_p.sum()
    return x0, confidence, entropy


# ---------------------------------------------------------------------------
# Commit-rule helpers
# ---------------------------------------------------------------------------
def low_confidence_schedule(n: int, steps: int) -> list[int]:
    """LLaDA's fixed per-step commit counts for one block.

    Step ``j`` (0-based) commits ``n // steps + (1 if j < n % steps else 0)``
    positions, for ``j = 0 .. steps - 1``; the counts sum to ``n``.

    Args:
        n: number of masked positions in the block at block start.
        steps: number of steps (forwards) budgeted for the block, ``>= 1``.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    base = n // steps
    remainder = n % steps
    return [base + (1 if j < remainder else 0) for j in range(steps)]


def factor_commit_count(sorted_confidences: list[torch.Tensor] | torch.Tensor, factor: float) -> int:
    """Number of positions the Fast-dLLM 'factor' rule commits.

    ``sorted_confidences`` are the confidences ``c_0 >= c_1 >= ... >= c_{N-1}``
    of the ``N`` masked block positions. The per-rank threshold is
    ``t_0 = -1`` and ``t_i = 1 - factor / (i + 2)`` for ``i >= 1``. Scanning
    ``i = 0, 1, ...`` we stop at the first ``i`` with ``c_i < t_i``:

    * failure at ``i`` with ``1 <= i <= N - 2``: commit ``i`` positions;
    * no failure, or first failure at ``i == N - 1``: commit all ``N``
      (the latter reproduces an upstream quirk).
    """
    n = len(sorted_confidences)
    if n == 0:
        return 0
    first_failure: int | None = None
    for i in range(n):
        t_i = -1.0 if i == 0 else 1.0 - factor / (i + 2)
        if bool(sorted_confidences[i] < t_i):
            first_failure = i
            break
    if first_failure is None or first_failure == n - 1:
        return n
    # A failure at i == 0 is impossible (confidences are >= 0 > -1), so
    # here 1 <= first_failure <= n - 2.
    return first_failure


def _by_confidence_desc(positions: list[int], conf: dict[int, torch.Tensor]) -> list[int]:
    """Positions sorted by confidence descending, ties by ascending position."""
    return sorted(positions, key=lambda pos: (-float(conf[pos]), pos))


# ---------------------------------------------------------------------------
# Model calls
# ---------------------------------------------------------------------------
def _forward(
    model: Any,
    input_ids: torch.Tensor,
    past_key_values: KVCache | None,
    use_cache: bool,
) -> Any:
    return model(input_ids=input_ids, past_key_values=past_key_values, use_cache=use_cache)


def _truncate_cache(past_key_values: Any, length: int) -> KVCache:
    """Keep the first ``length`` positions (dim 2) of every layer's K and V."""
    truncated = []
    for layer in past_key_values:
        k, v = layer[0], layer[1]
        truncated.append((k[:, :, :length].clone(), v[:, :, :length].clone()))
    return tuple(truncated)


# ---------------------------------------------------------------------------
# Reference decoder
# ---------------------------------------------------------------------------
@torch.no_grad()
def reference_generate(
    model: Any,
    prompt: torch.LongTensor,
    gen_length: int,
    block_length: int,
    mask_id: int,
    policy: str,
    steps_per_block: int | None = None,
    threshold: float = 0.9,
    factor: float = 1.0,
    use_prefix_cache: bool = False,
    shift: bool = False,
) -> tuple[torch.LongTensor, int]:
    """Greedy semi-autoregressive masked-diffusion decoding of ONE sequence.

    Semantics:

    1. ``x = prompt ++ [mask_id] * gen_length``. Blocks of ``block_length``
       positions are decoded left to right; block ``b`` covers ``[s, e)`` with
       ``s = Lp + b * block_length``.
    2. Every step is exactly one model forward (``nfe += 1``); its logits are
       turned into per-position ``(x0, confidence, entropy)`` by
       :func:`position_stats`. The step then commits (sets to ``x0``) a set of
       still-masked positions of the *current* block, chosen by ``policy``:

       * ``'low_confidence'``: step ``j`` of the block commits the ``k_j``
         most confident masked block positions, ``k_j`` from
         :func:`low_confidence_schedule` with ``n = block_length`` (the masked
         count at block start) and ``steps_per_block`` (default
         ``block_length``).
       * ``'threshold'``: every masked block position with
         ``confidence >= threshold``, plus in any case the most confident one.
       * ``'factor'``: the :func:`factor_commit_count` most confident masked
         block positions.
       * ``'lowest_entropy'``: the single masked block position with the
         lowest entropy.

       A block ends when it has no mask left; then the next block starts.
    3. ``shift=False``: the prediction for position ``i`` is the model output
       at ``i``. ``shift=True`` (Dream-style): it is the output at ``i - 1``.
    4. Without cache every forward runs on the full ``x``. With
       ``use_prefix_cache=True`` the first step of each block runs the full
       ``x`` with ``use_cache=True`` (its logits drive the first commit); the
       returned cache is truncated to its first ``c`` positions (``c = s``, or
       ``c = s - 1`` when ``shift``). Later steps of the block feed
       ``x[:, c:]`` with that truncated cache; output row ``j`` of such a call
       is absolute position ``c + j``.

    Args:
        model: callable following the module-level model contract.
        prompt: ``[1, Lp]`` token ids.
        gen_length: number of generated positions (multiple of block_length).
        block_length: block size.
        mask_id: mask token id.
        policy: one of :data:`POLICIES`.
        steps_per_block: forwards per block for ``'low_confidence'`` only.
        threshold: confidence threshold for ``'threshold'``.
        factor: factor for ``'factor'``.
        use_prefix_cache: enable the prefix KV cache.
        shift: Dream-style shifted predictions.

    Returns:
        ``(x, nfe)``: the final ``[1, Lp + gen_length]`` ids and the number of
        model forwards.
    """
    if prompt.dim() != 2 or prompt.shape[0] != 1:
        raise ValueError(f"prompt must have shape [1, Lp], got {tuple(prompt.shape)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; expected one of {POLICIES}")
    if block_length <= 0 or gen_length < 0 or gen_length % block_length != 0:
        raise ValueError("gen_length must be a non-negative multiple of a positive block_length")
    prompt_length = prompt.shape[1]
    if shift and prompt_length < 1:
        raise ValueError("shift=True needs a non-empty prompt")
    steps = block_length if steps_per_block is None else steps_per_block
    if policy == "low_confidence" and steps < 1:
        raise ValueError(f"steps_per_block must be >= 1, got {steps}")

    x = torch.full((1, prompt_length + gen_length), mask_id, dtype=torch.long, device=prompt.device)
    x[0, :prompt_length] = prompt[0].to(torch.long)
    nfe = 0

    for block in range(gen_length // block_length):
        s = prompt_length + block * block_length
        e = s + block_length
        c = s - 1 if shift else s
        cache: KVCache | None = None

        schedule: list[int] = []
        if policy == "low_confidence":
            n_masked = sum(1 for i in range(s, e) if int(x[0, i]) == mask_id)
            schedule = low_confidence_schedule(n_masked, steps)

        step = 0
        while any(int(x[0, i]) == mask_id for i in range(s, e)):
            # ---- one forward ------------------------------------------------
            if use_prefix_cache and step == 0:
                out = _forward(model, x, None, True)
                cache = _truncate_cache(out.past_key_values, c)
                offset = 0  # output row j <-> absolute position j
            elif use_prefix_cache:
                out = _forward(model, x[:, c:], cache, True)
                offset = c  # output row j <-> absolute position c + j
            else:
                out = _forward(model, x, None, False)
                offset = 0
            nfe += 1
            logits = out.logits

            # ---- per-position stats for the masked block positions ----------
            masked = [i for i in range(s, e) if int(x[0, i]) == mask_id]
            pred: dict[int, int] = {}
            conf: dict[int, torch.Tensor] = {}
            ent: dict[int, torch.Tensor] = {}
            for i in masked:
                # Absolute position whose model output predicts position i.
                source = i - 1 if shift else i
                row = source - offset
                x0, confidence, entropy = position_stats(logits[0, row], mask_id)
                pred[i], conf[i], ent[i] = x0, confidence, entropy

            # ---- choose positions to commit ----------------------------------
            if policy == "low_confidence":
                if step >= len(schedule):
                    raise RuntimeError("low_confidence schedule exhausted with masks left")
                chosen = _by_confidence_desc(masked, conf)[: schedule[step]]
            elif policy == "threshold":
                ranked = _by_confidence_desc(masked, conf)
                chosen = [ranked[0]]
                for i in ranked[1:]:
                    if bool(conf[i] >= threshold):
                        chosen.append(i)
            elif policy == "factor":
                ranked = _by_confidence_desc(masked, conf)
                count = factor_commit_count([conf[i] for i in ranked], factor)
                chosen = ranked[:count]
            else:  # lowest_entropy
                chosen = [min(masked, key=lambda pos: (float(ent[pos]), pos))]

            for i in chosen:
                x[0, i] = pred[i]
            step += 1

    return x, nfe


# ---------------------------------------------------------------------------
# Nucleus mixture
# ---------------------------------------------------------------------------
def reference_nucleus_mixture(
    probs_row: torch.Tensor,
    embedding: torch.Tensor,
    mask_embedding: torch.Tensor,
    top_p: float,
    r_f: float,
    alpha_form: str,
) -> torch.Tensor:
    """Mixture embedding for ONE position (exact, no nucleus size cap).

    * Sort ``p`` (``probs_row``, which already has ``p[mask_id] = 0``)
      descending; the nucleus is the smallest prefix of the sorted tokens whose
      cumulative mass (float32 ``torch.cumsum``) is ``>= top_p``, at least one
      token (the whole vocabulary if rounding keeps the total below ``top_p``).
    * Renormalise ``p`` over the nucleus: ``p_bar``.
    * ``e_bar = sum_{v in nucleus} p_bar_v * embedding[v]``.
    * ``H_hat = (-sum_v p_v log p_v) / log(V)`` over the FULL vocabulary,
      ``0 log 0 = 0``, ``V = probs_row.numel()``.
    * ``alpha = r_f * (1 - H_hat)`` for ``alpha_form == 'one_minus_entropy'``,
      ``alpha = r_f * H_hat`` for ``alpha_form == 'entropy'``.
    * Return ``(1 - alpha) * mask_embedding + alpha * e_bar`` in float32.

    Args:
        probs_row: ``[V]`` float32 probabilities.
        embedding: ``[V, d]`` token embedding matrix.
        mask_embedding: ``[d]`` embedding of the mask token.
        top_p: nucleus mass.
        r_f: mixing scale.
        alpha_form: ``'one_minus_entropy'`` or ``'entropy'``.

    Returns:
        ``[d]`` float32 mixture embedding.
    """
    if alpha_form not in ("one_minus_entropy", "entropy"):
        raise ValueError(f"unknown alpha_form {alpha_form!r}")
    p = probs_row.detach().to(torch.float32).reshape(-1)
    vocab = p.numel()
    emb = embedding.detach().to(torch.float32)
    mask_emb = mask_embedding.detach().to(torch.float32)

    sorted_p, sorted_ids = torch.sort(p, descending=True)
    cumulative = torch.cumsum(sorted_p, dim=0)
    nucleus_size = vocab
    for k in range(vocab):
        if bool(cumulative[k] >= top_p):
            nucleus_size = k + 1
            break
    nucleus_p = sorted_p[:nucleus_size]
    nucleus_ids = sorted_ids[:nucleus_size]
    p_bar = nucleus_p / nucleus_p.sum()
    e_bar = (p_bar[:, None] * emb[nucleus_ids]).sum(dim=0)

    p_log_p = torch.where(p > 0, p * torch.log(p), torch.zeros_like(p))
    h_hat = float(-p_log_p.sum()) / math.log(vocab)
    alpha = r_f * (1.0 - h_hat) if alpha_form == "one_minus_entropy" else r_f * h_hat

    return ((1.0 - alpha) * mask_emb + alpha * e_bar).to(torch.float32)
