"""The LLaDA baseline on the held-out prompts `sglang_loops.py` decodes, in the reference decoder.

    PYTHONPATH=. python benchmarks/llada_baseline.py --model DIR [--tasks arith,list,sudoku] [--attention full,block]
        [--threshold 0.9]

One token per step (low-confidence remasking), gen 64, block 32, prefix cache, greedy: the decoder of
the training script's final evaluation, but on the same prompts as `sglang_loops.py` (seed 0), so
that SGLang's accuracy can be read against the bidirectional figure of the very same problems.
`--threshold T` adds Fast-dLLM's threshold rule at T on the same prompts, and the gap between the two
(how much parallel commitment costs on a task).
"""

from __future__ import annotations

import argparse

import torch

from lrd_plugin import LRDConfig, generate
from lrd_plugin.loading import LoadedModel, load_model
from lrd_plugin.tasks import Example, generate_examples, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a LLaDA-format model directory")
    parser.add_argument("--tasks", default="arith,list,sudoku")
    parser.add_argument("--attention", default="full,block", help="comma list of full, block")
    parser.add_argument("--n", type=int, default=200, help="held-out prompts per task (seed 0, as sglang_loops.py)")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threshold", type=float, default=None, help="also decode with the threshold rule at T")
    args = parser.parse_args()
    if args.threshold is not None and not 0.0 < args.threshold <= 1.0:
        raise SystemExit(f"--threshold must be in (0, 1], got {args.threshold}")
    rules = {"LLaDA": LRDConfig.base(policy="low_confidence")}
    if args.threshold is not None:
        rules[f"threshold {args.threshold:g}"] = LRDConfig.base(policy="threshold", threshold=args.threshold)
    torch.set_num_threads(2)
    for attention in args.attention.split(","):
        if attention not in ("full", "block"):
            raise SystemExit(f"--attention must list full and/or block, got {attention!r}")
        loaded = load_model(args.model, block_size=None if attention == "full" else 32)
        cells = []
        for task in args.tasks.split(","):
            examples = generate_examples(task, "test", args.n, 0)
            scores = {name: accuracy(loaded, task, examples, config, args.batch_size) for name, config in rules.items()}
            text = " / ".join(f"{score:.1f}" for score in scores.values())
            gap = f" (gap {scores['LLaDA'] - list(scores.values())[1]:+.1f})" if len(scores) > 1 else ""
            cells.append(f"{task} {text} %{gap}")
        print(f"{attention} ({' / '.join(rules)}): " + " | ".join(cells), flush=True)


def accuracy(loaded: LoadedModel, task: str, examples: list[Example], config: LRDConfig, batch_size: int) -> float:
    """Percent of `examples` answered validly, decoded with `config` (gen 64, block 32, prefix cache)."""
    correct = 0
    for start in range(0, len(examples), batch_size):
        chunk = examples[start : start + batch_size]
        ids, mask = loaded.encode_batch([ex.prompt for ex in chunk])
        out = generate(
            loaded.denoiser, ids, config=config, attention_mask=mask, gen_length=64, block_length=32, cache="prefix"
        )
        answers = out.sequences[:, ids.shape[1] :].tolist()
        correct += sum(score(task, ex.prompt, loaded.decode(row)) for ex, row in zip(chunk, answers, strict=True))
    return 100 * correct / len(examples)


if __name__ == "__main__":
    main()
