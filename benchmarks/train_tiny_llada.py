"""Train a tiny LLaDA-Instruct-like model on the task suite, on CPU in about half an hour.

    python benchmarks/train_tiny_llada.py [--minutes 30] [--out lrd_plugin/default_model] [--seed 0]

The objective is LLaDA's SFT loss: per sample t ~ U(eps, 1), each *answer* token (never the prompt)
is masked with probability t, and the cross-entropy on masked tokens, weighted by 1/t, is normalised
by the answer length. Answers are padded with EOS to the generation length, and the EOS tail is
masked and predicted like any other answer token, as in LLaDA-Instruct's SFT: this is what makes the
model confident about where an answer ends.

Most steps (85 %) use generation length 64 (cheap: prompt + 64 tokens); 10 % are padded to 128 and
5 % to 256 so that EOS tails at the benchmark's lengths, and the RoPE distances they imply, are in
distribution. The answers are the same at every length and only the tail grows, so a small share of
long steps suffices; at these shares about a quarter of the compute goes to the long steps (a 256
step costs about 2.6 times a 64 step). Half of the samples are ``arith`` (the headline task, with the
longest prompts and answers), a quarter each ``list`` and ``sudoku``; each task gets its own forward
in a step, so short Sudoku prompts are not left-padded to the length of word problems.

At the end the script saves ``model.safetensors``, ``config.json``, ``tokenizer.json`` and
``train_log.json`` into ``--out`` and prints the greedy accuracy of the LLaDA baseline (low-confidence
remasking, one token per step, gen_length 64, block_length 32) on held-out test problems per task.

Data, initialisation and masking are seeded by ``--seed``. With ``--minutes`` the learning-rate
schedule follows the elapsed fraction of the time budget, so the number of steps depends on the
machine; pass ``--steps`` for a run whose every step is reproducible.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lrd_plugin import HFDenoiser, LRDConfig, generate
from lrd_plugin.models import CharTokenizer, LLaDAModel, random_model_for
from lrd_plugin.tasks import TASK_CHARS, TASKS, Example, generate_examples, iter_examples, score

MASK_EPS = 1e-3  # LLaDA's forward process: p_mask = (1 - eps) * t + eps


def parse_mix(text: str, cast: type) -> dict[Any, float]:
    """``"64:0.8,128:0.1"`` -> ``{64: 0.8, 128: 0.1}``."""
    pairs = [item.split(":") for item in text.split(",")]
    return {cast(key): float(weight) for key, weight in pairs}


def make_batch(
    tokenizer: CharTokenizer, examples: list[Example], gen_length: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Left-padded prompt + EOS-padded answer.

    Returns ids [B, L], key mask [B, L] (0 on left padding), position ids counting real tokens (as
    the decoder numbers a padded row) and the answer region [B, L] (the last ``gen_length`` columns).
    """
    prompts = [tokenizer.encode(example.prompt) for example in examples]
    answers = [tokenizer.encode(example.target, add_bos=False) for example in examples]
    width = max(map(len, prompts))
    rows, masks = [], []
    for prompt, answer in zip(prompts, answers, strict=True):
        if len(answer) > gen_length:
            raise ValueError(f"answer of {len(answer)} tokens does not fit gen_length {gen_length}")
        pad = width - len(prompt)
        rows.append([tokenizer.pad_id] * pad + prompt + answer + [tokenizer.eos_id] * (gen_length - len(answer)))
        masks.append([0] * pad + [1] * (len(prompt) + gen_length))
    ids, keys = torch.tensor(rows), torch.tensor(masks)
    positions = (keys.cumsum(dim=1) - 1).clamp_min(0)
    answer_region = torch.zeros_like(ids, dtype=torch.bool)
    answer_region[:, width:] = True
    return ids, keys, positions, answer_region


def stratified_times(size: int, generator: torch.Generator) -> Tensor:
    """``size`` draws of t ~ U(0, 1) as (u + i) / size, shuffled: each is uniform, but together they
    cover the noise levels evenly, which lowers the variance of the 1/t-weighted loss."""
    u = torch.rand(1, generator=generator)
    return ((u + torch.arange(size)) / size)[torch.randperm(size, generator=generator)]


def diffusion_loss(
    model: LLaDAModel,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    t: Tensor,
    mask_id: int,
    generator: torch.Generator,
    autocast: bool,
) -> Tensor:
    """LLaDA's SFT loss on one batch, ``t`` [B] being each sample's noise level."""
    ids, keys, positions, answer_region = batch
    size = ids.shape[0]
    p_mask = ((1 - MASK_EPS) * t + MASK_EPS)[:, None].expand_as(ids)
    masked = (torch.rand(ids.shape, generator=generator) < p_mask) & answer_region
    device = next(model.parameters()).device
    noisy = torch.where(masked, mask_id, ids).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=noisy, attention_mask=keys.to(device), position_ids=positions.to(device)).logits
    masked = masked.to(device)
    token_loss = F.cross_entropy(logits[masked].float(), ids.to(device)[masked], reduction="none")
    answer_length = answer_region.sum(dim=1, keepdim=True).expand_as(ids).to(device)
    return (token_loss / p_mask.to(device)[masked] / answer_length[masked]).sum() / size


def answer_text(tokenizer: CharTokenizer, ids: list[int]) -> str:
    """Decoded answer up to the first EOS: text after the end of the answer is not part of it."""
    if tokenizer.eos_id in ids:
        ids = ids[: ids.index(tokenizer.eos_id)]
    return tokenizer.decode(ids)


@torch.no_grad()
def evaluate(
    model: LLaDAModel,
    tokenizer: CharTokenizer,
    tests: dict[str, list[Example]],
    gen_length: int = 64,
    block_length: int = 32,
    batch_size: int = 100,
) -> dict[str, dict[str, Any]]:
    """Exact-match accuracy per task with the LLaDA baseline: low-confidence remasking, greedy,
    one token per step. Returns ``{task: {n, correct, accuracy, samples}}``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    denoiser = HFDenoiser(model, tokenizer.mask_id)
    config = LRDConfig.base(policy="low_confidence")
    results: dict[str, dict[str, Any]] = {}
    for task, examples in tests.items():
        texts = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            prompts = [tokenizer.encode(example.prompt) for example in chunk]
            width = max(map(len, prompts))
            ids = torch.tensor([[tokenizer.pad_id] * (width - len(p)) + p for p in prompts], device=device)
            keys = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
            out = generate(
                denoiser, ids, attention_mask=keys, gen_length=gen_length, block_length=block_length, config=config
            )
            texts += [answer_text(tokenizer, row) for row in out.generated.tolist()]
        correct = sum(score(task, ex.prompt, text) for ex, text in zip(examples, texts, strict=True))
        results[task] = {
            "n": len(examples),
            "correct": correct,
            "accuracy": correct / len(examples),
            "samples": [[ex.prompt, text, ex.target] for ex, text in zip(examples[:3], texts[:3], strict=True)],
        }
    model.train(was_training)
    return results


def learning_rate(args: argparse.Namespace, step: int, progress: float) -> float:
    """Linear warm-up over ``--warmup`` steps, constant until ``--decay-from`` of the run, then cosine
    decay to 10 %: a short budget is best spent at the peak rate, with a decay to settle at the end."""
    warm = min(1.0, (step + 1) / args.warmup)
    decay = max(0.0, min(1.0, (progress - args.decay_from) / (1 - args.decay_from)))
    return args.lr * warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * decay)))


def print_accuracy(results: dict[str, dict[str, Any]], label: str) -> None:
    parts = [f"{task} {r['correct']}/{r['n']} = {100 * r['accuracy']:.1f}%" for task, r in results.items()]
    print(f"[{label}] " + " | ".join(parts), flush=True)


def save(model: LLaDAModel, tokenizer: CharTokenizer, log: dict[str, Any], out: Path) -> None:
    model.save_pretrained(out)
    tokenizer.save(out)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("lrd_plugin/default_model"))
    parser.add_argument("--minutes", type=float, default=30.0, help="training time budget (evaluation excluded)")
    parser.add_argument("--steps", type=int, default=None, help="fixed step count instead of a time budget")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init-from",
        type=Path,
        default=None,
        help="continue from a checkpoint saved by this script (its architecture flags are then ignored)",
    )
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--n-layers", type=int, default=4)
    parser.add_argument("--n-heads", type=int, default=8)
    parser.add_argument("--mlp-hidden-size", type=int, default=768)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--decay-from", type=float, default=0.6, help="fraction of the run before the decay")
    parser.add_argument("--clip", type=float, default=1.0)
    parser.add_argument("--task-mix", default="arith:0.5,list:0.25,sudoku:0.25")
    parser.add_argument("--gen-mix", default="64:0.85,128:0.1,256:0.05", help="generation length : share of steps")
    parser.add_argument("--no-bf16", action="store_true", help="train in plain fp32 (default: bf16 autocast)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--monitor-every", type=float, default=10.0, help="minutes between quick held-out checks")
    parser.add_argument("--monitor-n", type=int, default=30, help="test problems per task in a quick check")
    parser.add_argument("--eval-n", type=int, default=200, help="test problems per task in the final evaluation")
    args = parser.parse_args()
    if not 0.0 <= args.decay_from < 1.0:
        parser.error(f"--decay-from must be in [0, 1), got {args.decay_from}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = CharTokenizer(TASK_CHARS)
    if args.init_from is not None:
        previous = CharTokenizer.load(args.init_from)
        if (previous.chars, previous.specials) != (tokenizer.chars, tokenizer.specials):
            parser.error(f"--init-from {args.init_from} was trained with another tokenizer than TASK_CHARS")
        model = LLaDAModel.from_pretrained(args.init_from, dtype=torch.float32)
    else:
        model = random_model_for(
            tokenizer,
            d_model=args.d_model,
            n_heads=args.n_heads,
            n_layers=args.n_layers,
            mlp_hidden_size=args.mlp_hidden_size,
            seed=args.seed,
        )
    model = model.to(args.device).train()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters, {n_params * 4 / 2**20:.1f} MiB in fp32", flush=True)

    task_mix, gen_mix = parse_mix(args.task_mix, str), parse_mix(args.gen_mix, int)
    unknown = set(task_mix) - set(TASKS)
    if unknown:
        parser.error(f"--task-mix names unknown tasks {sorted(unknown)}")
    streams = {task: iter_examples(task, "train", args.seed) for task in task_mix}
    rng = random.Random(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    monitor_set = {task: generate_examples(task, "test", args.monitor_n, args.seed) for task in TASKS}
    autocast = not args.no_bf16
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    log: dict[str, Any] = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    log |= {"n_parameters": n_params, "loss": [], "monitor": []}
    if args.init_from is not None:  # keep the whole history of a continued run
        previous_log = args.init_from / "train_log.json"
        log["init_from_log"] = json.loads(previous_log.read_text()) if previous_log.exists() else None

    start = time.perf_counter()
    budget = args.minutes * 60
    next_monitor = args.monitor_every * 60
    step, window, window_lengths = 0, [], []
    while True:
        elapsed = time.perf_counter() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        lr = learning_rate(args, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        gen_length = rng.choices(list(gen_mix), weights=list(gen_mix.values()))[0]
        tasks = rng.choices(list(task_mix), weights=list(task_mix.values()), k=args.batch_size)
        times = stratified_times(args.batch_size, generator)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros(())
        # One forward per task: prompts of one task have similar lengths, so little left padding.
        # Weighting each part by its share of the batch gives the loss of the whole mixed batch.
        for task in task_mix:
            members = [i for i, name in enumerate(tasks) if name == task]
            if members:
                batch = make_batch(tokenizer, [next(streams[task]) for _ in members], gen_length)
                t = times[members]
                part = (
                    diffusion_loss(model, batch, t, tokenizer.mask_id, generator, autocast) * len(members) / len(tasks)
                )
                part.backward()
                loss += part.detach().cpu()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        step += 1
        window.append(loss.item())
        window_lengths.append(gen_length)
        if step % args.log_every == 0:
            entry = {
                "step": step,
                "minutes": round((time.perf_counter() - start) / 60, 3),
                "lr": lr,
                "loss": sum(window) / len(window),
                "grad_norm": float(grad_norm),
                "gen_lengths": {str(g): window_lengths.count(g) for g in sorted(set(window_lengths))},
            }
            log["loss"].append(entry)
            print(
                f"step {step:5d}  {entry['minutes']:6.2f} min  lr {lr:.2e}  loss {entry['loss']:.4f}  "
                f"grad {entry['grad_norm']:.2f}",
                flush=True,
            )
            window, window_lengths = [], []
        if not args.steps and time.perf_counter() - start >= next_monitor:
            next_monitor += args.monitor_every * 60
            results = evaluate(model, tokenizer, monitor_set)
            print_accuracy(results, f"step {step} held-out check")
            log["monitor"].append({"step": step, "accuracy": {t: r["accuracy"] for t, r in results.items()}})
            save(model, tokenizer, log, args.out)  # a killed run still leaves its latest weights

    train_minutes = (time.perf_counter() - start) / 60
    log |= {"steps": step, "train_minutes": round(train_minutes, 2)}
    print(f"trained {step} steps in {train_minutes:.1f} min", flush=True)
    save(model, tokenizer, log, args.out)

    model = model.float().eval()
    eval_start = time.perf_counter()
    tests = {task: generate_examples(task, "test", args.eval_n, args.seed) for task in TASKS}
    results = evaluate(model, tokenizer, tests)
    log["eval"] = {
        "decoder": "LRDConfig.base(policy='low_confidence'), gen_length 64, block_length 32, 1 token/step, greedy",
        "minutes": round((time.perf_counter() - eval_start) / 60, 2),
        "results": results,
    }
    print_accuracy(results, "final test, LLaDA baseline")
    for task, result in results.items():
        for prompt, text, target in result["samples"]:
            print(f"  {task}: {prompt!r} -> {text!r} (reference {target!r})")
    save(model, tokenizer, log, args.out)


if __name__ == "__main__":
    main()
