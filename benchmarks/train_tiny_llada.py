"""Train a tiny LLaDA-Instruct-like model on the task suite, on CPU in about half an hour.

    python benchmarks/train_tiny_llada.py [--minutes 30] [--out lrd_plugin/default_model] [--seed 0]
        [--init-from DIR] [--attention-mix full:0.5,block:0.5] [--checkpoint runs/train/checkpoint.pt] [--resume]

The objective is LLaDA's SFT loss: per sample t ~ U(eps, 1), each *answer* token (never the prompt)
is masked with probability t, and the cross-entropy on masked tokens, weighted by 1/t, is normalised
by the answer length. Answers are padded with EOS to the generation length, and the EOS tail is
masked and predicted like any other answer token, as in LLaDA-Instruct's SFT: this is what makes the
model confident about where an answer ends.

Most steps (85 %) use generation length 64 (cheap: prompt + 64 tokens); 10 % are padded to 128 and
5 % to 256 so that EOS tails at the benchmark's lengths, and the RoPE distances they imply, are in
distribution. The answers are the same at every length and only the tail grows, so a small share of
long steps suffices; at these shares about a quarter of the compute goes to the long steps (a 256
step costs about 2.6 times a 64 step). By default 40 % of the samples are ``arith`` (the headline
task, with the longest prompts and answers), 20 % ``list``, 10 % ``sudoku`` and 15 % each of the
constraint tasks ``latin`` and ``path`` (their targets are valid answers drawn at random); each task
gets its own forward in a step, so short prompts are not left-padded to the length of word problems.
On a CPU pass ``--no-bf16``: bf16 autocast was 30 times slower than fp32 on this project's 2-core
machine.

One checkpoint serves both attention patterns (``--attention-mix``): a *full* step is the loss above
under LLaDA's bidirectional attention; a *block* step trains block-diffusion attention (LLaDA2, SDAR,
Fast-dLLM v2, SGLang's loops: a block sees itself and the clean blocks before it). A block step feeds
the clean sequence and its noisy copy side by side with one mask (BD3-LM's vectorised form): a clean
token sees clean tokens of its own and earlier blocks; a noisy token sees the clean tokens of earlier
blocks and the noisy tokens of its own block; the loss is on the noisy copy. Blocks are aligned to a
random offset per row, so the model serves blocks aligned to position 0 (SGLang, Fast-dLLM v2) as
well as to the answer's start (this project's decoder). Tasks named in ``--full-attention-tasks``
take the full-attention loss in every step: ``count`` was learned in 600 full-attention steps but
not at all in 430 steps that were 80 % block attention (run 15 in benchmarks/README.md).

``--objective dream`` trains Dream's convention instead (Fast-dLLM's Dream loops): the output at
position i - 1 predicts token i, full attention only, and ``--out`` gets Dream's checkpoint format
(`lrd_plugin.models.dream_format`), which upstream's own ``DreamModel`` loads. ``--init-from`` a
model of this script (LLaDA's convention) starts it from that model's weights.

Every ``--checkpoint-every`` minutes the weights, the optimizer and the step go to ``--checkpoint``;
``--resume`` continues from there (the data streams are reseeded from the step), so a run can span
sessions.

At the end the script saves ``model.safetensors``, ``config.json``, ``tokenizer.json`` and
``train_log.json`` into ``--out`` and prints the greedy accuracy of the LLaDA baseline (low-confidence
remasking, one token per step, gen_length 64, block_length 32) on held-out test problems per task,
under full attention and under block-diffusion attention.

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
from lrd_plugin.models import CharTokenizer, LLaDAModel, block_attention_mask, random_model_for
from lrd_plugin.models.dream_format import save_dream
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
    shift: int = 0,
) -> Tensor:
    """LLaDA's SFT loss on one batch, ``t`` [B] being each sample's noise level. ``shift=1`` is
    Dream's convention: the output at position i - 1 predicts token i."""
    ids, keys, positions, answer_region = batch
    size = ids.shape[0]
    p_mask = ((1 - MASK_EPS) * t + MASK_EPS)[:, None].expand_as(ids)
    masked = (torch.rand(ids.shape, generator=generator) < p_mask) & answer_region
    device = next(model.parameters()).device
    noisy = torch.where(masked, mask_id, ids).to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(input_ids=noisy, attention_mask=keys.to(device), position_ids=positions.to(device)).logits
    if shift:  # the first position predicts nothing; it is never in the answer region
        logits = torch.cat((logits[:, :1], logits[:, :-1]), dim=1)
    masked = masked.to(device)
    token_loss = F.cross_entropy(logits[masked].float(), ids.to(device)[masked], reduction="none")
    answer_length = answer_region.sum(dim=1, keepdim=True).expand_as(ids).to(device)
    return (token_loss / p_mask.to(device)[masked] / answer_length[masked]).sum() / size


def two_stream_inputs(
    clean: Tensor, noisy: Tensor, keys: Tensor, positions: Tensor, block_size: int
) -> tuple[Tensor, Tensor, Tensor]:
    """[clean | noisy] ids, their 4-D attention mask and position ids: a clean token sees the clean
    tokens of its own and earlier blocks; a noisy token sees the clean tokens of earlier blocks and the
    noisy tokens of its own block (what it sees when its block is decoded over a cache of the others)."""
    length = clean.shape[1]
    blocks = torch.div(positions, block_size, rounding_mode="floor")
    same = blocks[:, None, :, None] == blocks[:, None, None, :]
    causal = block_attention_mask(positions, positions, block_size)  # key block <= query block
    clean_rows = torch.cat((causal, torch.zeros_like(causal)), dim=-1)
    noisy_rows = torch.cat((causal & ~same, same), dim=-1)
    real = keys.bool().repeat(1, 2)[:, None, None, :]
    mask = torch.cat((clean_rows, noisy_rows), dim=2) & real
    eye = torch.eye(2 * length, dtype=torch.bool)[None, None]
    mask = mask | (eye & ~mask.any(dim=-1, keepdim=True))  # a padded query sees itself
    return torch.cat((clean, noisy), dim=1), mask, positions.repeat(1, 2)


def block_diffusion_loss(
    model: LLaDAModel,
    batch: tuple[Tensor, Tensor, Tensor, Tensor],
    t: Tensor,
    mask_id: int,
    block_size: int,
    generator: torch.Generator,
    autocast: bool,
) -> Tensor:
    """The same loss under block-diffusion attention, on [clean | noisy] with one 4-D mask."""
    ids, keys, positions, answer_region = batch
    size, length = ids.shape
    positions = positions + torch.randint(0, block_size, (size, 1), generator=generator)  # random alignment
    p_mask = ((1 - MASK_EPS) * t + MASK_EPS)[:, None].expand_as(ids)
    masked = (torch.rand(ids.shape, generator=generator) < p_mask) & answer_region
    noisy = torch.where(masked, mask_id, ids)
    inputs, mask, positions = two_stream_inputs(ids, noisy, keys, positions, block_size)
    device = next(model.parameters()).device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
        logits = model(
            input_ids=inputs.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)
        ).logits[:, length:]
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
    attention: str = "full",
    shift: int = 0,
) -> dict[str, dict[str, Any]]:
    """Accuracy per task with the LLaDA baseline: low-confidence remasking, greedy, one token per
    step, under ``full`` or ``block`` attention. Returns ``{task: {n, correct, accuracy, samples}}``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    block_size = block_length if attention == "block" else None
    denoiser = HFDenoiser(model, tokenizer.mask_id, shift=shift, block_size=block_size)
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
                denoiser,
                ids,
                attention_mask=keys,
                gen_length=gen_length,
                block_length=block_length,
                config=config,
                cache="prefix",
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


def evaluate_both(
    model: LLaDAModel, tokenizer: CharTokenizer, tests: dict[str, list[Example]], attentions: list[str], shift: int = 0
) -> dict[str, dict[str, dict[str, Any]]]:
    return {attention: evaluate(model, tokenizer, tests, attention=attention, shift=shift) for attention in attentions}


def print_accuracy(results: dict[str, dict[str, Any]], label: str) -> None:
    parts = [f"{task} {r['correct']}/{r['n']} = {100 * r['accuracy']:.1f}%" for task, r in results.items()]
    print(f"[{label}] " + " | ".join(parts), flush=True)


def save(model: LLaDAModel, tokenizer: CharTokenizer, log: dict[str, Any], out: Path) -> None:
    if log["args"].get("objective") == "dream":  # Dream's names and config, for upstream's DreamModel
        save_dream(model, tokenizer, out)
    else:
        model.save_pretrained(out)
        tokenizer.save(out)
    (out / "train_log.json").write_text(json.dumps(log, indent=1) + "\n")


def save_checkpoint(path: Path, model: LLaDAModel, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Weights, optimizer moments and progress, written atomically (a kill mid-write keeps the last one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), **state}, partial)
    partial.replace(path)


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
    parser.add_argument("--task-mix", default="arith:0.4,list:0.2,sudoku:0.1,latin:0.15,path:0.15")
    parser.add_argument("--attention-mix", default="full:0.5,block:0.5", help="attention pattern : share of steps")
    parser.add_argument("--block-size", type=int, default=32, help="block of the block-diffusion steps")
    parser.add_argument(
        "--full-attention-tasks", default="", help="comma-separated tasks that take full attention in every step"
    )
    parser.add_argument("--gen-mix", default="64:0.85,128:0.1,256:0.05", help="generation length : share of steps")
    parser.add_argument(
        "--objective",
        choices=("llada", "dream"),
        default="llada",
        help="llada: the output at a position predicts it; dream: the output at i - 1 predicts token i "
        "(Dream's convention; full attention only; saved in Dream's checkpoint format)",
    )
    parser.add_argument("--no-bf16", action="store_true", help="train in plain fp32 (default: bf16 autocast)")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--monitor-every", type=float, default=10.0, help="minutes between quick held-out checks")
    parser.add_argument("--monitor-n", type=int, default=30, help="test problems per task in a quick check")
    parser.add_argument("--eval-n", type=int, default=200, help="test problems per task in the final evaluation")
    parser.add_argument("--checkpoint", type=Path, default=Path("runs/train/checkpoint.pt"))
    parser.add_argument("--checkpoint-every", type=float, default=5.0, help="minutes between checkpoints")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint")
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
    attention_mix = parse_mix(args.attention_mix, str)
    unknown = set(task_mix) - set(TASKS)
    if unknown:
        parser.error(f"--task-mix names unknown tasks {sorted(unknown)}")
    full_tasks = {task for task in args.full_attention_tasks.split(",") if task}
    if outside := full_tasks - set(task_mix):
        parser.error(f"--full-attention-tasks names tasks not in --task-mix: {sorted(outside)}")
    if set(attention_mix) - {"full", "block"}:
        parser.error(f"--attention-mix patterns must be full or block, got {sorted(attention_mix)}")
    attentions = [name for name in ("full", "block") if attention_mix.get(name, 0) > 0]
    if args.objective == "dream" and attentions != ["full"]:
        parser.error("--objective dream trains full attention only (Fast-dLLM's Dream loops): --attention-mix full:1")
    shift = int(args.objective == "dream")
    resumed = torch.load(args.checkpoint, weights_only=False) if args.resume else None
    first_step = 0 if resumed is None else resumed["step"]
    stream_seed = args.seed if first_step == 0 else args.seed + first_step  # a resumed run draws new data
    streams = {task: iter_examples(task, "train", stream_seed) for task in task_mix}
    rng = random.Random(stream_seed)
    generator = torch.Generator().manual_seed(stream_seed)
    trained = [task for task in TASKS if task in task_mix]  # checks score the tasks trained on, in suite order
    monitor_set = {task: generate_examples(task, "test", args.monitor_n, args.seed) for task in trained}
    autocast = not args.no_bf16
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=args.weight_decay)
    log: dict[str, Any] = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    log |= {"n_parameters": n_params, "loss": [], "monitor": []}
    if args.init_from is not None:  # keep the whole history of a continued run
        previous_log = args.init_from / "train_log.json"
        log["init_from_log"] = json.loads(previous_log.read_text()) if previous_log.exists() else None

    step, done_before = 0, 0.0
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimizer.load_state_dict(resumed["optimizer"])
        step, done_before, log = resumed["step"], resumed["elapsed"], resumed["log"]
        print(f"resumed from {args.checkpoint}: step {step}, {done_before / 60:.1f} min done", flush=True)
    start = time.perf_counter() - done_before
    budget = args.minutes * 60
    next_monitor = done_before + args.monitor_every * 60
    next_checkpoint = done_before + args.checkpoint_every * 60
    window, window_lengths = [], []
    while True:
        elapsed = time.perf_counter() - start
        progress = step / args.steps if args.steps else elapsed / budget
        if progress >= 1.0:
            break
        lr = learning_rate(args, step, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        gen_length = rng.choices(list(gen_mix), weights=list(gen_mix.values()))[0]
        attention = rng.choices(list(attention_mix), weights=list(attention_mix.values()))[0]
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
                if attention == "block" and task not in full_tasks:
                    part = block_diffusion_loss(
                        model, batch, t, tokenizer.mask_id, args.block_size, generator, autocast
                    )
                else:
                    part = diffusion_loss(model, batch, t, tokenizer.mask_id, generator, autocast, shift)
                part = part * len(members) / len(tasks)
                part.backward()
                loss += part.detach().cpu()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        step += 1
        window.append(loss.item())
        window_lengths.append(f"{attention}{gen_length}")
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
            monitor_start = time.perf_counter()
            both = evaluate_both(model, tokenizer, monitor_set, attentions, shift)
            for attention_name, results in both.items():
                print_accuracy(results, f"step {step} held-out check, {attention_name} attention")
            accuracy = {a: {t: r["accuracy"] for t, r in results.items()} for a, results in both.items()}
            log["monitor"].append({"step": step, "accuracy": accuracy})
            save(model, tokenizer, log, args.out)  # a killed run still leaves its latest weights
            start += time.perf_counter() - monitor_start  # checks do not eat the training budget
        if time.perf_counter() - start >= next_checkpoint:
            next_checkpoint += args.checkpoint_every * 60
            state = {"step": step, "elapsed": time.perf_counter() - start, "log": log}
            save_checkpoint(args.checkpoint, model, optimizer, state)

    train_minutes = (time.perf_counter() - start) / 60
    log |= {"steps": step, "train_minutes": round(train_minutes, 2)}
    print(f"trained {step} steps in {train_minutes:.1f} min", flush=True)
    save(model, tokenizer, log, args.out)

    model = model.float().eval()
    eval_start = time.perf_counter()
    tests = {task: generate_examples(task, "test", args.eval_n, args.seed) for task in trained}
    both = evaluate_both(model, tokenizer, tests, attentions, shift)
    log["eval"] = {
        "decoder": "LRDConfig.base(policy='low_confidence'), gen_length 64, block_length 32, 1 token/step, greedy, "
        "prefix cache",
        "minutes": round((time.perf_counter() - eval_start) / 60, 2),
        "results": both,
    }
    for attention_name, results in both.items():
        print_accuracy(results, f"final test, LLaDA baseline, {attention_name} attention")
        for task, result in results.items():
            for prompt, text, target in result["samples"]:
                print(f"  {task}: {prompt!r} -> {text!r} (reference {target!r})")
    save(model, tokenizer, log, args.out)


if __name__ == "__main__":
    main()
