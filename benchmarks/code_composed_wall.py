"""Engine alone against engine + the LRD default on the code model's bodies: forwards and wall time.

    PYTHONPATH=. python benchmarks/code_composed_wall.py [--n 16] [--gen-length 128] [--offset 0] [--runs 3]
        [--without-mixing] [--mix-floor P ...] [--out FILE]

Decodes the same held-out bodies (full contexts, block 32, in batches of 16) with Fast-dLLM's
threshold 0.9 alone and with the LRD default on it, alternating the two in each run, and prints the
median wall time of each and their ratio, and each one's forwards per body, sorted (a batch's wall is
its slowest body's), and how many bodies never emit EOS (they fill the canvas, and a threshold rule
that finds nothing confident there commits one token per forward). ``--without-mixing`` adds the
default with mixing off, and ``--mix-floor P`` the default with ``mix_min_confidence`` P (a bare
mask wherever the top-1 probability is below P; the default is 0.5 since stop 48, and 0 mixes every
open position as Eq. 3 does). With ``--out`` it also writes the generated tokens
(to check that a faster step decodes the same answers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from lrd_plugin import code_tasks as ct
from lrd_plugin.config import LRDConfig
from lrd_plugin.loading import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--gen-length", type=int, default=128)
    parser.add_argument("--offset", type=int, default=0, help="skip this many bodies of the seeded order")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--without-mixing", action="store_true", help="also the default with mixing off")
    parser.add_argument("--mix-floor", type=float, nargs="*", default=[], help="also the default with these floors")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    loaded = load_model("code")
    tok = loaded.tokenizer
    bodies = ct.generate_examples("body", "test", args.n, tok, gen_length=args.gen_length, offset=args.offset)
    variants = {
        "engine alone": LRDConfig.base(policy="threshold", threshold=0.9),
        "+ LRD default": LRDConfig(policy="threshold", threshold=0.9),
    }
    if args.without_mixing:
        variants["+ LRD no mixing"] = LRDConfig(policy="threshold", threshold=0.9, mixing=False)
    for floor in args.mix_floor:
        variants[f"+ LRD floor {floor:g}"] = LRDConfig(policy="threshold", threshold=0.9, mix_min_confidence=floor)
    walls: dict[str, list[float]] = {name: [] for name in variants}
    rows, tokens = {}, {}
    for _ in range(args.runs):
        for name, config in variants.items():
            begin = time.perf_counter()
            chunks = list(ct.decode_chunks(loaded.denoiser, bodies, tok.mask_id, tok.pad_id, config=config))
            walls[name].append(time.perf_counter() - begin)
            rows[name] = sorted(n for _, o, _ in chunks for n in o.nfe_per_sequence.tolist())
            tokens[name] = [row for _, o, _ in chunks for row in o.generated.tolist()]
    base = statistics.median(walls["engine alone"])
    print(f"{len(bodies)} bodies of {args.gen_length} tokens, block 32, median of {args.runs} alternated runs")
    nfe = {name: sum(forwards) / len(bodies) for name, forwards in rows.items()}
    for name, times in walls.items():
        print(
            f"{name:14s} NFE {nfe[name]:6.2f}  wall {statistics.median(times):7.2f} s  "
            f"engine / this {base / statistics.median(times):.2f}x"
        )
        print(f"{'':17s} forwards per body: {rows[name]}")
        endless = sum(tok.eos_id not in row for row in tokens[name])
        print(f"{'':17s} bodies without EOS: {endless} of {len(bodies)}")
    if args.out:
        args.out.write_text(json.dumps({"nfe": nfe, "walls": walls, "tokens": tokens}))


if __name__ == "__main__":
    main()
