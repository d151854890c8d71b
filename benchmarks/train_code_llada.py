"""Train a small LLaDA-architecture code model on CPython's standard library (the `code` model).

    PYTHONPATH=. python benchmarks/train_code_llada.py [--minutes 120] [--out lrd_plugin/code_model] [--seed 0]
        [--data-mix window:0.6,infill_line:0.1,infill_block:0.1,body:0.2] [--attention-mix full:1]
        [--checkpoint runs/train/code_checkpoint.pt] [--resume] [--no-bf16]

Data (``lrd_plugin.code_corpus``, ``lrd_plugin.code_tasks``): the train split of the interpreter's own
standard library (the held-out modules never enter training), tokenised with a byte-level BPE learnt
from the train split (``--vocab-size``; or ``--tokenizer DIR`` to reuse one). Needs the ``[code]``
extra (``tokenizers``).

Objective: LLaDA's masked diffusion loss. Per sample t ~ U(eps, 1) (stratified over the batch), each
token of the sample's loss region is masked with probability t, and the cross-entropy on the masked
tokens, weighted by 1/t, is normalised by the region's length. The samples (``--data-mix``):

* ``window``: ``--window`` tokens of a training file from the start of a line (BOS first, EOS after
  the file's end); the loss region is the whole window, as in LLaDA's pre-training;
* ``infill_line`` / ``infill_block``: the held-out tasks' layout on training files (left context,
  span, right context); the loss region is the span;
* ``body``: a function's body after the file before it (signature and docstring), padded with EOS to
  a generation length drawn from ``--body-gen-mix``; the loss region is the padded answer, so the
  model learns where a function ends (LLaDA's SFT).

Each kind gets its own forward in a step (similar lengths, little padding). ``--attention-mix``
adds block-diffusion steps as in ``train_tiny_llada.py`` (their loss functions are imported from
there); infill rows then see their right context only from earlier blocks, as block decoding would.

Every ``--checkpoint-every`` minutes the weights, the optimizer, the step and the tokenizer go to
``--checkpoint``; ``--resume`` continues from there (data streams reseeded from the step).
``--init-from DIR`` starts instead from a saved model directory (weights, tokenizer and sizes; a
fresh optimizer and schedule; its ``train_log.json`` is kept under ``init_from_log``), for a
machine without the run's checkpoint. With
``--minutes`` the learning-rate schedule follows the elapsed share of the budget, so the step count
depends on the machine; ``--steps N`` makes every step reproducible.

At the end the script saves ``model.safetensors``, ``config.json``, ``tokenizer.json`` (with the
Python version and the corpus digests) and ``train_log.json`` (the command, wall time, steps,
losses, evaluation) into ``--out`` (the weights in shards with ``--max-shard-mb``), which
``load_model`` (and ``--model DIR``) reads. It evaluates ``--eval-n`` held-out examples per task
with the LLaDA baseline (low-confidence remasking, one token per step): exact match, parse rate,
doctest runs, token accuracy, against the trivial baseline (the most frequent training token
everywhere), and the median top-1 confidence on masked positions of
held-out windows.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from the repository

from benchmarks.train_tiny_llada import (
    block_diffusion_loss,
    diffusion_loss,
    learning_rate,
    parse_mix,
    save_checkpoint,
    stratified_times,
)
from lrd_plugin import HFDenoiser
from lrd_plugin import code_tasks as ct
from lrd_plugin.code_corpus import DEFAULT_VOCAB_SIZE, build_tokenizer
from lrd_plugin.mixture import log_probs
from lrd_plugin.models import BPETokenizer, LLaDAModel, random_model_for
from lrd_plugin.models.llada import SHARD_INDEX_FILE, WEIGHTS_FILE

KINDS = ("window", *ct.TASKS)
Batch = tuple[Tensor, Tensor, Tensor, Tensor]


def make_rows(rows: list[tuple[list[int], int, int]], pad_id: int) -> Batch:
    """Right-padded rows. Each row is (ids, first, last): the loss region is ``ids[first:last]``.

    Returns ids [B, L], key mask [B, L] (0 on padding), position ids and the loss region [B, L]."""
    width = max(len(ids) for ids, _, _ in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    keys = torch.zeros_like(ids)
    region = torch.zeros_like(ids, dtype=torch.bool)
    for r, (row, first, last) in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        keys[r, : len(row)] = 1
        region[r, first:last] = True
    positions = (keys.cumsum(dim=1) - 1).clamp_min(0)
    return ids, keys, positions, region


def example_row(example: ct.CodeExample, eos_id: int) -> tuple[list[int], int, int]:
    """prompt + answer (+ right context): the loss region is the span (infills) or the padded answer (body)."""
    prompt = list(example.prompt_ids)
    answer = example.answer_ids(eos_id)
    last = len(prompt) + (example.gen_length if example.task == "body" else example.n_tokens)
    return prompt + answer, len(prompt), last


def window_row(window: list[int]) -> tuple[list[int], int, int]:
    return window, 1, len(window)  # everything but the BOS


class Streams:
    """The seeded training streams of every kind."""

    def __init__(self, tokenizer: BPETokenizer, args: argparse.Namespace, seed: int) -> None:
        self.tokenizer = tokenizer
        self.body_mix = parse_mix(args.body_gen_mix, int)
        limits = {"left_budget": args.left_budget, "right_budget": args.right_budget, "root": args.stdlib_root}
        self.windows = ct.iter_windows("train", tokenizer, args.window, seed, root=args.stdlib_root)
        self.tasks = {
            task: ct.iter_examples(task, "train", tokenizer, seed, **limits) for task in ("infill_line", "infill_block")
        }
        self.bodies = {
            g: ct.iter_examples("body", "train", tokenizer, seed + g, gen_length=g, **limits) for g in self.body_mix
        }
        self.rng = random.Random(seed)

    def rows(self, kind: str, count: int) -> list[tuple[list[int], int, int]]:
        eos = self.tokenizer.eos_id
        if kind == "window":
            return [window_row(next(self.windows)) for _ in range(count)]
        if kind == "body":
            g = self.rng.choices(list(self.body_mix), weights=list(self.body_mix.values()))[0]
            return [example_row(next(self.bodies[g]), eos) for _ in range(count)]
        return [example_row(next(self.tasks[kind]), eos) for _ in range(count)]


# --- evaluation ----------------------------------------------------------------------------------


@torch.no_grad()
def masked_confidence(
    model: LLaDAModel,
    tokenizer: BPETokenizer,
    n_windows: int = 64,
    length: int = 256,
    seed: int = 0,
    root: str | None = None,
) -> dict[str, float]:
    """On held-out windows with each code token masked with probability t (stratified over (0, 1]):
    the median top-1 probability at masked positions (the mask token excluded, as the decoder does),
    the masked-token accuracy and the mean cross-entropy."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    stream = ct.iter_windows("test", tokenizer, length, seed, root=root)
    generator = torch.Generator().manual_seed(seed)
    confidences, correct, losses = [], 0, []
    for start in range(0, n_windows, 16):
        size = min(16, n_windows - start)
        ids = torch.tensor([next(stream) for _ in range(size)])
        t = (torch.arange(start, start + size) + 0.5) / n_windows
        masked = torch.rand(ids.shape, generator=generator) < t[:, None]
        masked &= ids != tokenizer.eos_id  # code positions only: not the BOS, not the EOS after a file's end
        masked[:, 0] = False
        noisy = torch.where(masked, tokenizer.mask_id, ids)
        logp = log_probs(model(input_ids=noisy.to(device)).logits, tokenizer.mask_id)[masked.to(device)]
        gold = ids[masked].to(device)
        top = logp.max(dim=-1)
        confidences += top.values.exp().tolist()
        correct += int((top.indices == gold).sum())
        losses += (-logp.gather(-1, gold[:, None]).squeeze(-1)).tolist()
    model.train(was_training)
    return {
        "median_top1_confidence": statistics.median(confidences),
        "masked_token_accuracy": correct / len(confidences),
        "masked_cross_entropy": sum(losses) / len(losses),
        "masked_positions": len(confidences),
    }


def evaluate(
    model: LLaDAModel,
    tokenizer: BPETokenizer,
    tests: dict[str, list[ct.CodeExample]],
    trivial_token: int | None = None,
    attention: str = "full",
    block_length: int = 32,
    run_doctests: bool = True,
) -> dict[str, Any]:
    """Scores of the LLaDA baseline (and of the trivial filler) per task; ``{task: {model, trivial, samples}}``."""
    was_training = model.training
    model.eval()
    device = str(next(model.parameters()).device)
    denoiser = HFDenoiser(model, tokenizer.mask_id, block_size=block_length if attention == "block" else None)
    results: dict[str, Any] = {}
    for task, examples in tests.items():
        if attention == "block" and task != "body":
            continue  # an infill's right context sits in a later block: nothing to score
        begin = time.perf_counter()
        canvases = ct.decode_examples(
            denoiser, examples, tokenizer.mask_id, tokenizer.pad_id, block_length=block_length, device=device
        )
        scores = [ct.score(e, c, tokenizer, run_doctests=run_doctests) for e, c in zip(examples, canvases, strict=True)]
        entry: dict[str, Any] = {"model": ct.summarize(scores), "seconds": round(time.perf_counter() - begin, 1)}
        if trivial_token is not None:
            fills = [ct.trivial_fill(e, trivial_token, tokenizer.eos_id) for e in examples]
            entry["trivial"] = ct.summarize([ct.score(e, f, tokenizer) for e, f in zip(examples, fills, strict=True)])
        entry["samples"] = [
            {"path": e.path, "function": e.function, "gold": e.span, "text": ct.answer_text(e, c, tokenizer)}
            for e, c in zip(examples[:3], canvases[:3], strict=True)
        ]
        results[task] = entry
    model.train(was_training)
    return results


def print_scores(results: dict[str, Any], label: str) -> None:
    for task, entry in results.items():
        m = entry["model"]
        runs = "-" if m.get("runs") is None else f"{100 * m['runs']:.0f}% of {m['n_runs']}"
        line = (
            f"[{label}] {task}: n {m['n']}  exact {100 * m['exact']:.1f}%  parses {100 * m['parses']:.1f}%  "
            f"runs {runs}  edit sim {100 * m['edit_similarity']:.1f}%  token acc {100 * m['token_accuracy']:.1f}%"
        )
        if "trivial" in entry:
            t = entry["trivial"]
            line += f"  | trivial exact {100 * t['exact']:.1f}%  edit sim {100 * t['edit_similarity']:.1f}%"
        print(line, flush=True)


# --- training ------------------------------------------------------------------------------------


INIT_FILES = ("config.json", "tokenizer.json")  # what --init-from reads, beside the weights (one file or shards)
WEIGHTS = (WEIGHTS_FILE, SHARD_INDEX_FILE)


def save(model: LLaDAModel, tokenizer: BPETokenizer, log: dict[str, Any], out: Path, shard_mb: float | None) -> None:
    model.save_pretrained(out, None if shard_mb is None else int(shard_mb * 2**20))
    tokenizer.save(out)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lrd_plugin/code_model"))
    parser.add_argument("--minutes", type=float, default=120.0, help="training time budget (evaluation excluded)")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count instead of a time budget")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--stdlib-root", default=None, help="the corpus directory (default: this interpreter's standard library)"
    )
    parser.add_argument("--tokenizer", type=Path, default=None, help="a directory whose tokenizer.json to reuse")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="BPE size when building one")
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=6)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--mlp-hidden-size", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--decay-from", type=float, default=0.6, help="fraction of the run before the decay")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=256, help="tokens of a window sample, BOS included")
    parser.add_argument("--data-mix", default="window:0.6,infill_line:0.1,infill_block:0.1,body:0.2")
    parser.add_argument("--body-gen-mix", default="64:0.4,128:0.3,256:0.3", help="body canvas length : share")
    parser.add_argument("--left-budget", type=int, default=ct.LEFT_BUDGET, help="left context of training examples")
    parser.add_argument("--right-budget", type=int, default=ct.RIGHT_BUDGET, help="right context of training infills")
    parser.add_argument("--attention-mix", default="full:1", help="attention pattern : share of steps")
    parser.add_argument("--block-size", type=int, default=32, help="block of the block-diffusion steps")
    parser.add_argument("--no-bf16", action="store_true", help="train in plain fp32 (default: bf16 autocast)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--monitor-every", type=float, default=20.0, help="minutes between quick held-out checks")
    parser.add_argument("--monitor-n", type=int, default=16, help="held-out examples per task in a quick check")
    parser.add_argument("--eval-n", type=int, default=64, help="held-out examples per task in the final evaluation")
    parser.add_argument(
        "--eval-body-length", type=int, default=ct.BODY_GEN_LENGTH, help="canvas of the held-out body examples"
    )
    parser.add_argument("--eval-windows", type=int, default=64, help="held-out windows for the confidence check")
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/train/code_checkpoint.pt"))
    parser.add_argument("--checkpoint-every", type=float, default=5.0, help="minutes between checkpoints")
    parser.add_argument(
        "--max-shard-mb",
        type=float,
        default=None,
        help="save the weights in shards of at most this many MiB (e.g. 15 for the device tool's 16 MiB files)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="start from a saved model directory (e.g. lrd_plugin/code_model): its weights, tokenizer and "
        "sizes, with a fresh optimizer and schedule; for a machine that lacks the run's --checkpoint",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0.0 <= args.decay_from < 1.0:
        parser.error(f"--decay-from must be in [0, 1), got {args.decay_from}")
    data_mix, attention_mix = parse_mix(args.data_mix, str), parse_mix(args.attention_mix, str)
    if set(data_mix) - set(KINDS):
        parser.error(f"--data-mix kinds must be among {list(KINDS)}, got {sorted(data_mix)}")
    if set(attention_mix) - {"full", "block"}:
        parser.error(f"--attention-mix patterns must be full or block, got {sorted(attention_mix)}")
    if any(g % args.block_size for g in parse_mix(args.body_gen_mix, int)):
        parser.error(f"--body-gen-mix lengths must be multiples of --block-size {args.block_size}")
    if args.max_shard_mb is not None and not args.max_shard_mb * 2**20 >= 1:
        parser.error(f"--max-shard-mb must be positive, got {args.max_shard_mb}")
    if args.eval_body_length % 32:
        parser.error(f"--eval-body-length must be a multiple of the evaluation's block 32, got {args.eval_body_length}")
    attentions = [name for name in ("full", "block") if attention_mix.get(name, 0) > 0]
    if args.init_from is not None:
        if args.resume:
            parser.error("--init-from and --resume exclude each other: --resume continues --checkpoint")
        missing = [f for f in INIT_FILES if not (args.init_from / f).is_file()]
        if not any((args.init_from / f).is_file() for f in WEIGHTS):
            missing.append(" or ".join(WEIGHTS))
        if missing:
            parser.error(f"--init-from {args.init_from} must be a saved model directory; it lacks {missing}")
        sizes = json.loads((args.init_from / "config.json").read_text())
        for name in ("d_model", "n_layers", "n_heads", "mlp_hidden_size"):  # so the log's args are true
            setattr(args, name, sizes[name])
        args.tokenizer = args.init_from

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    resumed = torch.load(args.checkpoint, weights_only=False) if args.resume else None
    clock = time.perf_counter()
    if resumed is not None:
        tokenizer = BPETokenizer.from_payload(resumed["tokenizer"])
    elif args.tokenizer is not None:
        tokenizer = BPETokenizer.load(args.tokenizer)
    else:
        tokenizer = build_tokenizer(args.vocab_size, root=args.stdlib_root)
    print(f"tokenizer: {tokenizer.vocab_size} ids ({time.perf_counter() - clock:.0f} s)", flush=True)
    if args.init_from is not None:
        model = LLaDAModel.from_pretrained(args.init_from).to(args.device)
        print(f"weights from {args.init_from}", flush=True)
    else:
        model = random_model_for(
            tokenizer,
            d_model=args.d_model,
            n_heads=args.n_heads,
            n_layers=args.n_layers,
            mlp_hidden_size=args.mlp_hidden_size,
            seed=args.seed,
            max_sequence_length=1024,
        ).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, {n_params * 4 / 1e6:.1f} MB in fp32", flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    log: dict[str, Any] = {
        "command": " ".join(["python", *sys.argv]) if argv is None else " ".join(argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "python_version": platform.python_version(),
        "corpus": tokenizer.metadata,
        "n_parameters": n_params,
        "loss": [],
        "monitor": [],
    }
    step, done_before = 0, 0.0
    if args.init_from is not None:  # the saved model's own history travels with it
        log["init_from"] = str(args.init_from)
        previous_log = args.init_from / "train_log.json"
        log["init_from_log"] = json.loads(previous_log.read_text()) if previous_log.exists() else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        step, done_before, log = resumed["step"], resumed["elapsed"], resumed["log"]
        log.setdefault("resumed", []).append({"step": step, "command": " ".join(sys.argv)})
        print(f"resumed from {args.checkpoint}: step {step}, {done_before / 60:.1f} min done", flush=True)
    model.train()

    stream_seed = args.seed if step == 0 else args.seed + step  # a resumed run draws new data
    streams = Streams(tokenizer, args, stream_seed)
    rng = random.Random(stream_seed)
    generator = torch.Generator().manual_seed(stream_seed)
    eval_limits = {"root": args.stdlib_root, "gen_length": args.eval_body_length}
    monitor_set = {
        task: ct.generate_examples(task, "test", args.monitor_n, tokenizer, args.seed, **eval_limits)
        for task in ct.TASKS
    }
    autocast = not args.no_bf16
    payload = tokenizer.payload()

    start = time.perf_counter() - done_before
    budget = args.minutes * 60
    next_monitor = done_before + args.monitor_every * 60
    next_checkpoint = done_before + args.checkpoint_every * 60
    window: list[float] = []
    tokens_seen = 0
    while True:
        elapsed = time.perf_counter() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        lr = learning_rate(args, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        attention = rng.choices(list(attention_mix), weights=list(attention_mix.values()))[0]
        kinds = rng.choices(list(data_mix), weights=list(data_mix.values()), k=args.batch_size)
        times = stratified_times(args.batch_size, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros(())
        for kind in data_mix:
            members = [i for i, name in enumerate(kinds) if name == kind]
            if not members:
                continue
            batch = make_rows(streams.rows(kind, len(members)), tokenizer.pad_id)
            tokens_seen += int(batch[1].sum())
            t = times[members]
            if attention == "block":
                part = block_diffusion_loss(model, batch, t, tokenizer.mask_id, args.block_size, generator, autocast)
            else:
                part = diffusion_loss(model, batch, t, tokenizer.mask_id, generator, autocast)
            part = part * len(members) / len(kinds)
            part.backward()
            loss += part.detach().cpu()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        step += 1
        window.append(loss.item())
        if step % args.log_every == 0:
            minutes = (time.perf_counter() - start) / 60
            entry = {
                "step": step,
                "minutes": round(minutes, 3),
                "lr": lr,
                "loss": sum(window) / len(window),
                "grad_norm": float(grad_norm),
                "tokens": tokens_seen,
            }
            log["loss"].append(entry)
            print(
                f"step {step:6d}  {minutes:7.2f} min  lr {lr:.2e}  loss {entry['loss']:.4f}  "
                f"grad {entry['grad_norm']:.2f}",
                flush=True,
            )
            window = []
        if not args.steps and time.perf_counter() - start >= next_monitor:
            next_monitor += args.monitor_every * 60
            monitor_start = time.perf_counter()
            results = evaluate(model, tokenizer, monitor_set, run_doctests=False)
            print_scores(results, f"step {step} held-out check")
            confidence = masked_confidence(model, tokenizer, 16, args.window, args.seed, args.stdlib_root)
            log["monitor"].append(
                {"step": step, "scores": {t: r["model"] for t, r in results.items()}, "windows": confidence}
            )
            save(model, tokenizer, log, args.out, args.max_shard_mb)  # a killed run still leaves its latest weights
            start += time.perf_counter() - monitor_start  # checks do not eat the training budget
        if time.perf_counter() - start >= next_checkpoint:
            next_checkpoint += args.checkpoint_every * 60
            state = {"step": step, "elapsed": time.perf_counter() - start, "log": log, "tokenizer": payload}
            save_checkpoint(args.checkpoint, model, optimizer, state)

    train_minutes = (time.perf_counter() - start) / 60
    log |= {"steps": step, "train_minutes": round(train_minutes, 2), "tokens_seen_this_session": tokens_seen}
    log["steps_per_minute"] = round(step / train_minutes, 2) if train_minutes > 0 else None
    print(f"trained {step} steps in {train_minutes:.1f} min", flush=True)
    save(model, tokenizer, log, args.out, args.max_shard_mb)
    state = {"step": step, "elapsed": train_minutes * 60, "log": log, "tokenizer": payload}
    save_checkpoint(args.checkpoint, model, optimizer, state)

    model = model.float().eval()
    eval_start = time.perf_counter()
    counts = ct.token_counts(tokenizer, args.stdlib_root)
    trivial = counts.most_common(1)[0][0]
    tests = {
        task: ct.generate_examples(task, "test", args.eval_n, tokenizer, args.seed, **eval_limits) for task in ct.TASKS
    }
    log["eval"] = {
        "decoder": "LRDConfig.base(policy='low_confidence'): greedy, 1 token/step, prefix cache; infills one block "
        f"of span + right context (true span length); body gen_length {args.eval_body_length}, block 32",
        "trivial_token": tokenizer.token_text(trivial),
        "results": {a: evaluate(model, tokenizer, tests, trivial, attention=a) for a in attentions},
        "windows": masked_confidence(model, tokenizer, args.eval_windows, args.window, args.seed, args.stdlib_root),
    }
    log["eval"]["minutes"] = round((time.perf_counter() - eval_start) / 60, 2)
    for attention_name, results in log["eval"]["results"].items():
        print_scores(results, f"final test, LLaDA baseline, {attention_name} attention")
        for task, entry in results.items():
            for sample in entry["samples"][:1]:
                print(f"  {task} {sample['path']}:{sample['function']}\n    gold {sample['gold']!r}")
                print(f"    text {sample['text']!r}")
    w = log["eval"]["windows"]
    print(
        f"held-out windows: median top-1 confidence {w['median_top1_confidence']:.3f}, masked-token accuracy "
        f"{100 * w['masked_token_accuracy']:.1f}%, cross-entropy {w['masked_cross_entropy']:.3f}",
        flush=True,
    )
    save(model, tokenizer, log, args.out, args.max_shard_mb)


if __name__ == "__main__":
    main()
