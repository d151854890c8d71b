"""LRD's per-step extra work against one forward pass, for models of several sizes, in one process.

    python benchmarks/step_cost.py [--device cpu] [--dtype float32] [--repeats 30] [--json]

Each row builds a random-weight LLaDA-architecture model (no download), then times, on the same
logits: one forward over prompt + block, one base-policy step (the commit rule alone) and one full
LRD Phase-2 step (KL, entropy, top-p nucleus mixture, commit). `extra/forward` is
(LRD step - base step) / forward.
"""

from __future__ import annotations

import argparse
import json

import torch

from lrd_plugin import HFDenoiser, LRDConfig
from lrd_plugin.models import LLaDAConfig, LLaDAModel
from lrd_plugin.stepcost import measure_step_cost

SIZES = {  # name: (d_model, n_layers, n_heads, mlp_hidden, vocab)
    "embedded-default (random)": (64, 2, 4, 128, 102),
    "small": (256, 4, 4, 1024, 8192),
    "medium": (512, 8, 8, 2048, 32000),
    "llada-vocab": (512, 4, 8, 2048, 126464),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--block-length", type=int, default=32)
    parser.add_argument("--prompt-length", type=int, default=64)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.sizes:
        d_model, layers, heads, mlp, vocab = SIZES[name]
        config = LLaDAConfig(
            d_model=d_model,
            n_heads=heads,
            n_layers=layers,
            mlp_hidden_size=mlp,
            vocab_size=vocab,
            max_sequence_length=1024,
            mask_token_id=vocab - 1,
        )
        model = LLaDAModel(config)
        model.init_weights(0)
        model = model.to(device=args.device, dtype=getattr(torch, args.dtype)).eval()
        cost = measure_step_cost(
            HFDenoiser(model, vocab - 1),
            prompt_length=args.prompt_length,
            block_length=args.block_length,
            config=LRDConfig(),
            repeats=args.repeats,
        )
        rows.append({"model": name, "d_model": d_model, "layers": layers, "vocab": vocab, **cost.to_dict()})
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"device {args.device}, {args.dtype}, prompt {args.prompt_length} + block {args.block_length}, "
        f"median of {args.repeats}"
    )
    print("| model | d_model x layers | vocab | forward ms | base step ms | LRD step ms | extra / forward |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['d_model']} x {r['layers']} | {r['vocab']} | {r['forward_ms']:.3f} | "
            f"{r['base_step_ms']:.3f} | {r['lrd_step_ms']:.3f} | {r['extra_over_forward']:.3f} |"
        )


if __name__ == "__main__":
    main()
