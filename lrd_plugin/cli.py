"""The `lrd` command: generate with LRD from a model directory, run the demo, print a config."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .code_tasks import TASKS as CODE_TASKS
from .config import LRDConfig
from .decoder import CACHE_MODES, generate
from .loading import DEFAULT_MODEL, LoadedModel, learnt_tasks, load_model
from .models.tokenizer import BPETokenizer
from .stepcost import StepCost, measure_step_cost
from .tasks import TASKS


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command, as results record it
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        parser.exit(2, f"lrd: error: {exc}\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lrd", description="Latent Refinement Decoding (arXiv 2510.11052) for masked diffusion LMs."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    gen = sub.add_parser("generate", help="decode prompts with LRD and print text or JSON")
    _model_args(gen)
    gen.add_argument("--prompt", action="append", default=[], help="a prompt (repeatable)")
    gen.add_argument("--prompts-file", type=Path, help="a text file with one prompt per line")
    gen.add_argument("--batch-size", type=_positive, default=8)
    gen.add_argument("--kl-trace", action="store_true", help="include the per-step KL trace in --json output")
    gen.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    gen.set_defaults(run=_generate)

    demo = sub.add_parser("demo", help="base sampler vs LRD side by side on the embedded default model")
    _model_args(demo)
    demo.add_argument("--json", action="store_true", help="print the results as JSON")
    demo.set_defaults(run=_demo, model=DEFAULT_MODEL)

    bench = sub.add_parser(
        "bench", help="accuracy, NFE and speed: LLaDA, Fast-dLLM-style, LRD and LRD + Fast-dLLM on the task suite"
    )
    _model_args(bench, lengths=False)
    bench.add_argument(
        "--tasks",
        nargs="+",
        choices=list(TASKS) + list(CODE_TASKS),
        help=f"default: the suite tasks the model was trained on (its train_log.json), else all of them "
        f"({', '.join(TASKS)}; code model: {', '.join(CODE_TASKS)})",
    )
    bench.add_argument(
        "--gen-lengths", nargs="+", type=_positive, default=[64, 128, 256], help="answer lengths (code: body canvases)"
    )
    bench.add_argument("--n", type=_positive, default=100, help="held-out test prompts per task")
    bench.add_argument("--batch-size", type=_positive, default=16)
    bench.add_argument(
        "--quick",
        action="store_true",
        help="smoke mode: 16 prompts per task, length 64 only (code: 8 per task, body 64, spans <= 16, short contexts)",
    )
    bench.add_argument("--max-span", type=_positive, default=64, help="code model: longest infill span in tokens")
    bench.add_argument("--doctests", action="store_true", help="code model: also run the doctests of completed bodies")
    bench.add_argument(
        "--offset",
        type=_non_negative,
        default=0,
        help="code model: skip the first OFFSET held-out examples (a long run in shards, merged by "
        "benchmarks/merge_code_results.py)",
    )
    bench.add_argument("--ablations", action="store_true", help="add LRD without refinement / mixing / early stop")
    bench.add_argument("--sweep-r-f", nargs="+", type=float, default=[], metavar="R_F", help="add LRD at these r_f")
    bench.add_argument("--sweep-top-p", nargs="+", type=float, default=[], metavar="P", help="add LRD at these top_p")
    bench.add_argument(
        "--mask-ratios",
        nargs="+",
        type=float,
        default=[1.0],
        metavar="R",
        help="also run infilling: the reference answer with this share of its positions masked (1 = generation)",
    )
    bench.add_argument(
        "--kl-gated",
        nargs="+",
        type=float,
        default=[],
        metavar="C",
        help="add LRD (alone and with Fast-dLLM threshold) with the kl_gated early stop at these confidence gates",
    )
    bench.add_argument(
        "--per-position",
        nargs="+",
        type=float,
        default=[],
        metavar="C",
        help="add LRD (alone and with Fast-dLLM threshold) with the per_position early stop at these gates",
    )
    bench.add_argument(
        "--sweep-threshold",
        nargs="+",
        type=float,
        default=[],
        metavar="T",
        help="add Fast-dLLM's threshold rule at these thresholds (its accuracy-vs-NFE curve)",
    )
    bench.add_argument(
        "--composed",
        nargs="+",
        type=float,
        default=[],
        metavar="T",
        help="add LRD's composed mode (the default plus stable_slack) on Fast-dLLM's threshold rule at these T",
    )
    bench.add_argument(
        "--composed-slack",
        nargs="+",
        type=float,
        default=[2.0],
        metavar="S",
        help="the stable_slack of the --composed rows (several: one curve each)",
    )
    bench.add_argument(
        "--sweep-factor", nargs="+", type=float, default=[], metavar="F", help="add Fast-dLLM's factor rule at these f"
    )
    bench.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="FIELD=V1,V2,…",
        help="add LRD with any numeric LRDConfig field swept (repeatable), e.g. tau_decode=0.01,0.1,1",
    )
    bench.add_argument("--out", type=Path, default=Path("runs/bench"), help="folder for JSON, Markdown and plots")
    bench.set_defaults(run=_bench)

    cfg = sub.add_parser("config", help="print the effective LRD config as YAML (or JSON)")
    cfg.add_argument("--config", type=Path, help="a YAML or JSON config file to start from")
    cfg.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    cfg.add_argument("--json", action="store_true")
    cfg.set_defaults(run=_print_config)
    return parser


def _model_args(p: argparse.ArgumentParser, lengths: bool = True) -> None:
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="'default', 'code' (CPython-stdlib code model) or a local model directory",
    )
    p.add_argument("--config", type=Path, help="a YAML or JSON LRDConfig file")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a config field")
    p.add_argument("--block-length", type=_positive, default=32)
    p.add_argument(
        "--attention",
        choices=["full", "block"],
        default="full",
        help="full: bidirectional (LLaDA); block: block-diffusion attention over blocks of --block-length "
        "(a block sees itself and the blocks before it, as LLaDA2/SDAR in SGLang and Fast-dLLM v2)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--seed", type=int, default=0)
    if lengths:
        p.add_argument("--gen-length", type=_positive, default=64)
        p.add_argument("--cache", choices=CACHE_MODES, default="prefix")


def _block_size(args: argparse.Namespace) -> int | None:
    return args.block_length if args.attention == "block" else None


def _config(args: argparse.Namespace) -> LRDConfig:
    base = LRDConfig.load(args.config) if args.config else LRDConfig()
    changes: dict[str, Any] = {}
    for item in args.set:
        field, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects FIELD=VALUE, got {item!r}")
        changes[field] = _parse_value(value)
    return LRDConfig.from_dict({**base.to_dict(), **changes})


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _generate(args: argparse.Namespace) -> int:
    config = _config(args)
    prompts = list(args.prompt)
    if args.prompts_file:
        prompts += [line for line in args.prompts_file.read_text().splitlines() if line.strip()]
    if not prompts:
        raise ValueError("give at least one --prompt or a --prompts-file")
    loaded = load_model(args.model, device=args.device, dtype=args.dtype, seed=args.seed, block_size=_block_size(args))
    if loaded.random_weights:
        print(f"note: {loaded.description}", file=sys.stderr)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    batches = [prompts[i : i + args.batch_size] for i in range(0, len(prompts), args.batch_size)]
    for batch in _bar(batches, "batches", enabled=len(batches) > 1):
        ids, mask = loaded.encode_batch(batch)
        out = generate(
            loaded.denoiser,
            ids,
            attention_mask=mask,
            gen_length=args.gen_length,
            block_length=args.block_length,
            config=config,
            cache=args.cache,
            generator=generator,
            record_kl=args.kl_trace,
            progress=len(batches) == 1 and args.gen_length >= 256,
        )
        stats = out.to_dict(with_tokens=False)
        for row, prompt in enumerate(batch):
            text = loaded.decode(out.generated[row].tolist())
            if args.json:
                record = {
                    "prompt": prompt,
                    "text": text,
                    "nfe": int(out.nfe_per_sequence[row]),
                    "refine_steps": stats["refine_steps"][row],
                    "decode_steps": stats["decode_steps"][row],
                    "early_stopped_blocks": stats["early_stopped_blocks"][row],
                    "stopped_sequence": stats["stopped_sequence"][row],
                    "batch_wall_time_s": out.wall_time,
                }
                if args.kl_trace:
                    record["kl_trace"] = [[step[row] for step in block] for block in stats["kl_trace"]]
                print(json.dumps(record))
            else:
                print(f"{prompt}{text}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The main job until the trained embedded model ships: every sampler on the same prompts."""

    lrd = _config(args)
    loaded = load_model(args.model, device=args.device, dtype=args.dtype, seed=args.seed, block_size=_block_size(args))
    from .tasks import generate_examples

    tasks = learnt_tasks(TASKS, loaded.trained_tasks)
    prompts = [ex.prompt for task in tasks for ex in generate_examples(task, "test", 2, args.seed)]
    ids, mask = loaded.encode_batch(prompts)
    variants = {
        "base: lowest-entropy, 1 token/step": LRDConfig.base(policy="lowest_entropy"),
        "base: LLaDA low-confidence, 1 token/step": LRDConfig.base(policy="low_confidence"),
        "base: Fast-dLLM threshold 0.9": LRDConfig.base(policy="threshold"),
        f"LRD ({lrd.policy})": lrd,
        "LRD + threshold 0.9": lrd.replace(policy="threshold", steps_per_block=None),
    }
    rows = []
    for name, cfg in _bar(list(variants.items()), "samplers", enabled=not args.json):
        out = generate(
            loaded.denoiser,
            ids,
            attention_mask=mask,
            gen_length=args.gen_length,
            block_length=args.block_length,
            config=cfg,
            cache=args.cache,
        )
        tokens = out.generated.numel()
        rows.append(
            {
                "sampler": name,
                "nfe": out.nfe,
                "mean_nfe": out.nfe_per_sequence.float().mean().item(),
                "phase1_steps": out.refine_steps.float().mean().item(),
                "early_stop_rate": out.early_stopped.float().mean().item(),
                "wall_s": out.wall_time,
                "tokens_per_s": tokens / out.wall_time,
            }
        )
    cost = measure_step_cost(loaded.denoiser, block_length=args.block_length, config=lrd)
    result = {
        "model": loaded.description,
        "prompts": len(prompts),
        "gen_length": args.gen_length,
        "block_length": args.block_length,
        "cache": args.cache,
        "rows": rows,
        "step_cost": cost.to_dict(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"model: {loaded.description}")
    print(f"{len(prompts)} prompts, gen_length {args.gen_length}, block {args.block_length}, cache {args.cache}\n")
    print(f"| {'sampler':<42} | NFE | mean NFE/seq | Phase-1 steps/block | early-stop rate | tokens/s |")
    print(f"|{'-' * 44}|----:|-------------:|--------------------:|----------------:|---------:|")
    for r in rows:
        print(
            f"| {r['sampler']:<42} | {r['nfe']:>3} | {r['mean_nfe']:>12.1f} | {r['phase1_steps']:>19.2f} "
            f"| {r['early_stop_rate']:>15.2f} | {r['tokens_per_s']:>8.0f} |"
        )
    print("\n" + _step_cost_line(cost))
    if loaded.random_weights:
        print("\nnote: random weights -- predictions are noise, so only NFE and cost are meaningful here.")
    return 0


def bench_tasks(requested: list[str] | None, loaded: LoadedModel) -> list[str]:
    """The tasks `lrd bench` runs: those requested, else the suite's tasks the model was trained on
    (a model trained before a task joined the suite is not scored on it), else the whole suite."""
    suite = CODE_TASKS if isinstance(loaded.tokenizer, BPETokenizer) else TASKS
    if requested and set(requested) - set(suite):
        raise SystemExit(f"--tasks for this model must be among {list(suite)}, got {requested}")
    return list(requested) if requested else learnt_tasks(suite, loaded.trained_tasks)


def _bench(args: argparse.Namespace) -> int:
    from . import bench

    lrd = _config(args)
    loaded = load_model(args.model, device=args.device, dtype=args.dtype, seed=args.seed, block_size=_block_size(args))
    code = isinstance(loaded.tokenizer, BPETokenizer)  # a code model: the code tasks are its suite
    args.tasks = bench_tasks(args.tasks, loaded)
    if args.quick:
        args.n, args.gen_lengths = min(args.n, 8 if code else 16), [64]
        args.max_span = min(args.max_span, 16)
    samplers = bench.code_samplers(lrd) if code else bench.standard_samplers(lrd)
    if args.ablations:  # the code set already holds two of the three
        samplers += [s for s in bench.ablation_samplers(lrd) if s.name not in {t.name for t in samplers}]
    if not code and args.offset:
        raise SystemExit("--offset applies to the code model; the task suite draws its prompts from --seed")
    if code and args.mask_ratios != [1.0]:
        raise SystemExit("--mask-ratios applies to the task suite; the code tasks choose their own masked spans")
    samplers += bench.sweep_samplers("r_f", args.sweep_r_f, lrd) + bench.sweep_samplers("top_p", args.sweep_top_p, lrd)
    for text in args.sweep:
        field, values = _parse_sweep(text)
        samplers += bench.sweep_samplers(field, values, lrd)
    samplers += bench.gated_samplers("kl_gated", args.kl_gated, lrd)
    samplers += bench.gated_samplers("per_position", args.per_position, lrd)
    samplers += bench.baseline_sweeps(args.sweep_threshold, args.sweep_factor)
    for slack in args.composed_slack:
        samplers += bench.composed_samplers(args.composed, slack, lrd)
    _check_unique(samplers)
    if code:
        return _code_bench(args, loaded, samplers, lrd)
    records = bench.run_benchmark(
        loaded,
        samplers,
        tasks=args.tasks,
        gen_lengths=args.gen_lengths,
        block_length=args.block_length,
        n=args.n,
        batch_size=args.batch_size,
        seed=args.seed,
        progress=True,
        mask_ratios=args.mask_ratios,
    )
    rows = bench.speedups(records)
    cost = measure_step_cost(loaded.denoiser, block_length=args.block_length, config=lrd)
    meta = {
        "model": loaded.description,
        "step_cost": cost.to_dict(),
        "n_per_task": args.n,
        "block_length": args.block_length,
        "device": args.device,
        "lrd_config": lrd.to_dict(),
        "argv": args.argv,
    }
    paths = bench.write_report(rows, meta, args.out)
    print(f"model: {loaded.description}; {args.n} held-out prompts per task, block {args.block_length}\n")
    print(bench.markdown_table(rows))
    summary = bench.equal_accuracy(rows, "lrd")
    if any(r["reference_accuracy"] is not None for r in summary):
        print("LRD (as configured) against LRD without early stop, and the Fast-dLLM rules at equal accuracy:\n")
        print(bench.equal_accuracy_table(summary, bench.BASELINE_FAMILIES))
    print(_step_cost_line(cost))
    if loaded.random_weights:
        print("note: random weights -- accuracy is meaningless here, only NFE and cost are.")
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _code_bench(args: argparse.Namespace, loaded: Any, samplers: list[Any], lrd: LRDConfig) -> int:
    """The code model's benchmark: the same samplers on held-out code, scored by exact match, parse rate
    and token accuracy, with the trivial fillers and the confidence and KL statistics beside them."""
    from . import bench, code_bench

    limits = code_bench.QUICK_LIMITS if args.quick else {}
    records, stats = code_bench.run_code_benchmark(
        loaded,
        samplers,
        tasks=args.tasks,
        n=args.n,
        body_lengths=args.gen_lengths,
        max_span=args.max_span,
        block_length=args.block_length,
        batch_size=args.batch_size,
        seed=args.seed,
        offset=args.offset,
        run_doctests=args.doctests,
        **limits,
    )
    rows = bench.speedups(records)
    meta = {
        "model": loaded.description,
        "n_per_task": args.n,
        "offset": args.offset,
        "seed": args.seed,
        "block_length": args.block_length,
        "max_span": args.max_span,
        "contexts": limits or "full",
        "device": args.device,
        "lrd_config": lrd.to_dict(),
        "argv": args.argv,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    table, extra = code_bench.code_table(rows), code_bench.statistics_text(stats)
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "results": rows, "statistics": stats}, indent=2))
    (args.out / "results.md").write_text(table + "\n" + extra)
    paths = [args.out / "results.json", args.out / "results.md", *bench.plot_accuracy_vs_nfe(rows, args.out)]
    print(
        f"model: {loaded.description}; up to {args.n} held-out examples per task and size, block {args.block_length}\n"
    )
    print(table)
    print(extra)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _parse_sweep(text: str) -> tuple[str, list[float]]:
    field, sep, values = text.partition("=")
    numeric = [f.name for f in dataclasses.fields(LRDConfig) if f.type in ("float", "int")]
    if not sep or field not in numeric:
        raise SystemExit(f"--sweep expects FIELD=V1,V2,... with FIELD one of {numeric}, got {text!r}")
    try:
        parsed = [json.loads(v) for v in values.split(",") if v]
    except json.JSONDecodeError:
        parsed = []
    if not parsed or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parsed):
        raise SystemExit(f"--sweep {field}: expected comma-separated numbers, got {values!r}")
    return field, parsed


def _check_unique(samplers: list[Any]) -> None:
    seen: set[str] = set()
    for s in samplers:
        if s.name in seen:
            raise SystemExit(f"sampler {s.name!r} is requested twice (it may be a standard row); drop the duplicate")
        seen.add(s.name)


def _step_cost_line(cost: StepCost) -> str:
    return (
        f"per-step cost (median of 30, sequence {cost.sequence_length}, block {cost.block_length}): "
        f"forward {cost.forward_ms:.3f} ms, base policy step {cost.base_step_ms:.3f} ms, "
        f"LRD step {cost.lrd_step_ms:.3f} ms -> LRD's extra work = {cost.extra_over_forward:.2f}x one forward"
    )


def _print_config(args: argparse.Namespace) -> int:
    config = _config(args)
    print(json.dumps(config.to_dict(), indent=2) if args.json else config.to_yaml(), end="" if not args.json else "\n")
    return 0


def _bar(items: list[Any], desc: str, enabled: bool) -> Any:
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    return tqdm(items, desc=desc, leave=False, file=sys.stderr)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer, got {text}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
