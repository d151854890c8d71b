"""The LLaDA baseline on the held-out prompts `sglang_loops.py` decodes, in the reference decoder.

    PYTHONPATH=. python benchmarks/llada_baseline.py --model DIR [--tasks arith,list,sudoku] [--attention full,block]

One token per step (low-confidence remasking), gen 64, block 32, prefix cache, greedy: the decoder of
the training script's final evaluation, but on the same prompts as `sglang_loops.py` (seed 0), so
that SGLang's accuracy can be read against the bidirectional figure of the very same problems.
"""

from __future__ import annotations

import argparse

import torch

from lrd_plugin import LRDConfig, generate
from lrd_plugin.loading import load_model
from lrd_plugin.tasks import generate_examples, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a LLaDA-format model directory")
    parser.add_argument("--tasks", default="arith,list,sudoku")
    parser.add_argument("--attention", default="full,block", help="comma list of full, block")
    parser.add_argument("--n", type=int, default=200, help="held-out prompts per task (seed 0, as sglang_loops.py)")
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for attention in args.attention.split(","):
        if attention not in ("full", "block"):
            raise SystemExit(f"--attention must list full and/or block, got {attention!r}")
        loaded = load_model(args.model, block_size=None if attention == "full" else 32)
        cells = []
        for task in args.tasks.split(","):
            examples = generate_examples(task, "test", args.n, 0)
            correct = 0
            for start in range(0, len(examples), args.batch_size):
                chunk = examples[start : start + args.batch_size]
                ids, mask = loaded.encode_batch([ex.prompt for ex in chunk])
                config = LRDConfig.base(policy="low_confidence")
                out = generate(
                    loaded.denoiser, ids, config=config, attention_mask=mask, gen_length=64, block_length=32,
                    cache="prefix",
                )  # fmt: skip
                answers = out.sequences[:, ids.shape[1] :].tolist()
                pairs = zip(chunk, answers, strict=True)
                correct += sum(score(task, ex.prompt, loaded.decode(row)) for ex, row in pairs)
            cells.append(f"{task} {100 * correct / len(examples):.1f} %")
        print(f"{attention}: " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
