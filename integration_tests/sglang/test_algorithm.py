"""`--dllm-algorithm LRD` inside the released SGLang's own dLLM loops (`DllmAlgorithm.run`: `_run_sync`
and `_run_fdfo`), against SGLang's own `LowConfidence`, on the embedded default (a trained tiny
LLaDA) behind `harness.TinyModelRunner`. See conftest.py for the one import stand-in (torchvision).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from harness import Request, TinyModelRunner, serve
from sglang.srt.dllm import algorithm as registry
from sglang.srt.dllm.algorithm.base import DllmAlgorithm
from sglang.srt.dllm.algorithm.low_confidence import LowConfidence
from sglang.srt.dllm.config import DllmConfig
from sglang.srt.layers.vocab_parallel_embedding import VocabParallelEmbedding, pad_vocab_size
from sglang.srt.managers.schedule_batch import Req
from sglang.srt.plugins import load_plugins
from sglang.srt.sampling.sampling_params import SamplingParams

from lrd_plugin import mixture, tasks
from lrd_plugin.integrations.sglang import NAME
from lrd_plugin.integrations.sglang.algorithm import LRD, embed_mixture, embedding_shard
from lrd_plugin.loading import DEFAULT_DIR
from lrd_plugin.models import CharTokenizer, LLaDAModel

BLOCK = 32
FEATURES_OFF = {"refinement": False, "mixing": False, "early_stop": False}


@pytest.fixture(scope="module")
def model() -> tuple[LLaDAModel, CharTokenizer]:
    return LLaDAModel.from_pretrained(DEFAULT_DIR).eval(), CharTokenizer.load(DEFAULT_DIR)


def make(cls: type, name: str, settings: dict, mask_id: int, fdfo: bool) -> DllmAlgorithm:
    config = DllmConfig(
        algorithm=name,
        algorithm_config=settings,
        block_size=BLOCK,
        mask_id=mask_id,
        max_running_requests=4,
        first_done_first_out_mode=fdfo,
    )
    return cls(config)


def requests(tokenizer: CharTokenizer, blocks: tuple[int, ...] = (2, 2, 1, 2)) -> list[Request]:
    """Prompts of the three tasks; lengths differ, so the prompt's tail shares the first block
    unevenly (one prompt of 32+ characters also has a complete prefilled block)."""
    prompts = [ex.prompt for task in ("arith", "list", "sudoku") for ex in tasks.generate_examples(task, "test", 2)]
    return [Request(f"r{i}", tokenizer.encode(p), b) for i, (p, b) in enumerate(zip(prompts, blocks, strict=False))]


def run(cls: type, name: str, settings: dict, model: tuple, *, fdfo: bool, blocks=(2, 2, 1, 2)):
    net, tokenizer = model
    algorithm = make(cls, name, settings, tokenizer.mask_id, fdfo)
    runner = TinyModelRunner(net, BLOCK)
    reqs = requests(tokenizer, blocks)
    rounds = serve(algorithm, runner, reqs)
    return algorithm, runner, reqs, rounds


# --- registration and configuration ------------------------------------------------------------


def test_the_entry_point_registers_lrd_with_sglangs_plugin_loader():
    assert any(ep.name == "lrd" for ep in entry_points(group="sglang.srt.plugins"))
    load_plugins()
    assert registry.get_algorithm_cls(NAME) is LRD
    assert issubclass(LRD, DllmAlgorithm)
    assert registry.get_algorithm(DllmConfig(NAME, {}, BLOCK, 5, 1)).block_size == BLOCK


def test_supported_architectures_are_sglangs_masked_dllms():
    assert set(LRD.supported_architectures) == {"LLaDA2MoeModelLM", "SDARForCausalLM", "SDARMoeForCausalLM"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("r_f: 2.0\n", "r_f must be in (0.0, 1.0]"),
        ("policy: lowest_entropy\n", "'policy' is not accepted"),
        ("temperature: 0.7\n", "'temperature' is not accepted"),
        ("tau_decod: 0.1\n", "unknown --dllm-algorithm-config key 'tau_decod'"),
        ("early_stop_scope: sequence\n", "early_stop_scope must be 'block'"),
        ("block_size: 0\n", "block_size must be an integer >= 1"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
        ("top_p: [\n", "is not valid YAML"),
    ],
)
def test_an_invalid_yaml_is_refused_at_server_start(tmp_path: Path, text: str, message: str):
    path = tmp_path / "lrd.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        LRD.configure_server_args(SimpleNamespace(dllm_algorithm_config=str(path)))


def test_a_valid_yaml_passes_and_reaches_the_algorithm(tmp_path: Path):
    path = tmp_path / "lrd.yaml"
    path.write_text("block_size: 32\nthreshold: 0.9\nr_f: 0.2\nmax_refine_steps: 4\n")
    LRD.configure_server_args(SimpleNamespace(dllm_algorithm_config=str(path)))
    algorithm = make(LRD, NAME, {"block_size": 32, "threshold": 0.9, "r_f": 0.2, "max_refine_steps": 4}, 5, False)
    assert (algorithm.lrd.threshold, algorithm.lrd.r_f, algorithm.lrd.max_refine_steps) == (0.9, 0.2, 4)
    assert algorithm.max_steps(BLOCK) == 4 + BLOCK + 1
    assert make(LRD, NAME, {}, 5, False).lrd.threshold == 0.95  # LowConfidence's default


def test_validate_request_turns_away_what_lrd_cannot_honour():
    def req(**params) -> Req:
        return Req("r", "", [1, 2, 3], SamplingParams(**params))

    assert LRD.validate_request(req(temperature=0.0, max_new_tokens=8)) is None
    message = LRD.validate_request(req(regex="[0-9]+", frequency_penalty=0.5))
    assert message is not None and "regex" in message and "frequency_penalty" in message


# --- exactness against LowConfidence -----------------------------------------------------------


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
@pytest.mark.parametrize("threshold", [0.95, 0.6])
def test_features_off_reproduces_low_confidence_token_for_token_and_forward_for_forward(model, fdfo, threshold):
    _, base_runner, base, base_rounds = run(LowConfidence, "LowConfidence", {"threshold": threshold}, model, fdfo=fdfo)
    _, lrd_runner, ours, rounds = run(LRD, NAME, {"threshold": threshold, **FEATURES_OFF}, model, fdfo=fdfo)
    mask_id = model[1].mask_id
    assert all(mask_id not in r.output for r in base)  # the precondition: the model never predicts the mask
    assert [r.output for r in ours] == [r.output for r in base]
    assert len(lrd_runner.forwards) == len(base_runner.forwards) and rounds == base_rounds
    assert [lrd_runner.forwards_of(r.rid) for r in ours] == [base_runner.forwards_of(r.rid) for r in base]
    assert [r.block_done_rounds for r in ours] == [r.block_done_rounds for r in base]


# --- LRD proper --------------------------------------------------------------------------------

LRD_SETTINGS = {"threshold": 0.9, "tau_refine": 0.01, "tau_decode": 0.001, "max_refine_steps": 3}


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
def test_no_mixture_kv_stays_in_the_cache(model, fdfo):
    _, runner, reqs, _ = run(LRD, NAME, LRD_SETTINGS, model, fdfo=fdfo)
    assert sum(sum(f.replaced.values()) for f in runner.forwards) > 0  # mixtures were fed
    assert len(runner.persisted) == sum(r.blocks for r in reqs)
    assert all(replaced == 0 for _, replaced in runner.persisted)  # every block's last forward: hard tokens
    for r in reqs:
        assert len(r.output) == r.blocks * BLOCK - len(r.prompt) % BLOCK
        assert model[1].mask_id not in r.output


def test_refinement_spends_forwards_without_committing(model):
    # mixing off: refinement forwards see the same inputs, so the KL is 0 and tau_refine 0 keeps
    # refining for max_refine_steps; the decoding that follows is the base sampler's. Phase 1 commits
    # nothing as in the paper (the default, refine_commit auto, commits with the threshold rule from the
    # first forward: it has no Phase 1)
    settings = {
        "threshold": 0.9,
        "mixing": False,
        "early_stop": False,
        "tau_refine": 0.0,
        "max_refine_steps": 3,
        "refine_commit": "none",
    }
    _, runner, reqs, _ = run(LRD, NAME, settings, model, fdfo=True)
    _, base_runner, base, _ = run(LRD, NAME, {**settings, "refinement": False}, model, fdfo=True)
    assert [r.output for r in reqs] == [r.output for r in base]
    for ours, theirs in zip(reqs, base, strict=True):
        assert runner.forwards_of(ours.rid) == base_runner.forwards_of(theirs.rid) + 3 * ours.blocks


def test_fdfo_carries_each_requests_state_and_drops_it_when_the_block_is_done(model):
    algorithm, _, reqs, _ = run(LRD, NAME, LRD_SETTINGS, model, fdfo=True)
    done_rounds = {tuple(r.block_done_rounds) for r in reqs}
    assert len(done_rounds) > 1  # requests of one batch finish in different rounds
    for r in reqs:
        seen = r.states_seen  # the state SGLang passed in, round by round
        starts = [i for i, state in enumerate(seen) if state is None]
        assert starts[0] == 0 and len(starts) == r.blocks  # fresh exactly at each block's first round
        for i in range(1, len(seen)):
            if i not in starts and i - 1 not in starts:
                assert seen[i] is seen[i - 1]  # the same state object, carried between rounds
        assert r.state is None  # dropped once the request's last block was done
    assert algorithm.fdfo


def test_fdfo_and_the_synchronous_loop_decode_the_same_tokens(model):
    _, sync_runner, sync, _ = run(LRD, NAME, LRD_SETTINGS, model, fdfo=False)
    _, fdfo_runner, fdfo, _ = run(LRD, NAME, LRD_SETTINGS, model, fdfo=True)
    assert [r.output for r in fdfo] == [r.output for r in sync]
    # FDFO stops forwarding a request once its block is done; the synchronous loop runs the batch on
    assert sum(fdfo_runner.forwards_of(r.rid) for r in fdfo) <= sum(sync_runner.forwards_of(r.rid) for r in sync)


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
@pytest.mark.parametrize(
    "settings",
    [{}, {"threshold": 0.9, "refine_commit": "sure", "stable_slack": 2.0}, {"refine_commit": "none"}],
    ids=["default", "composed", "paper-phase-1"],
)
def test_a_request_decodes_the_same_alone_as_in_its_batch(model, fdfo, settings):
    """The batch's requests share one block state (FDFO regroups its rows whenever a request starts
    a block): each request's tokens and forwards are still those it gets when served alone, with
    settings whose steps read the KL (Phase 1, stable commits) as well as the default's."""
    _, runner, batch, _ = run(LRD, NAME, settings, model, fdfo=fdfo)
    net, tokenizer = model
    for i, request in enumerate(batch):
        alone = requests(tokenizer)[i]
        alone_runner = TinyModelRunner(net, BLOCK)
        serve(make(LRD, NAME, settings, tokenizer.mask_id, fdfo), alone_runner, [alone])
        assert alone.output == request.output, request.rid
        if fdfo:  # the synchronous loop forwards a batch until its slowest request is done
            assert alone_runner.forwards_of(alone.rid) == runner.forwards_of(request.rid), request.rid


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
def test_the_batch_takes_one_lrd_step_per_forward(model, fdfo):
    """As LowConfidence, LRD steps the whole batch at once: one `LRDSampler.step` per forward of the
    batch, whatever its size, not one per request."""
    net, tokenizer = model
    algorithm = make(LRD, NAME, {}, tokenizer.mask_id, fdfo)
    runner = TinyModelRunner(net, BLOCK)
    step, calls = algorithm.sampler.step, []

    def counted(*args, **kwargs):
        calls.append(args[0].tokens.shape[0])  # the batch of block states stepped
        return step(*args, **kwargs)

    algorithm.sampler.step = counted
    serve(algorithm, runner, requests(tokenizer))
    assert len(calls) == len(runner.forwards)
    assert calls == [len(forward.rids) for forward in runner.forwards]
    assert max(calls) == 4


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
@pytest.mark.parametrize("cls,name,settings", [(LowConfidence, "LowConfidence", {"threshold": 0.9}), (LRD, NAME, {})])
def test_a_request_ends_after_the_block_that_holds_its_eos(model, fdfo, cls, name, settings):
    """SGLang checks each finished block for the stop token; the harness does the same, so
    lengths past the answer cost no forwards (what `sglang_loops.py --stop-at-eos` measures)."""
    net, tokenizer = model
    prompts = [ex.prompt for ex in tasks.generate_examples("arith", "test", 3)]
    ended, full = (
        [Request(f"r{i}", tokenizer.encode(p), 8, eos=eos) for i, p in enumerate(prompts)]
        for eos in (tokenizer.eos_id, None)
    )
    runners = [TinyModelRunner(net, BLOCK), TinyModelRunner(net, BLOCK)]
    for runner, reqs in zip(runners, (ended, full), strict=True):
        serve(make(cls, name, settings, tokenizer.mask_id, fdfo), runner, reqs)
    for short, long in zip(ended, full, strict=True):
        assert short.stopped and short.finished_blocks < 8 and not long.stopped and long.finished_blocks == 8
        assert tokenizer.eos_id in short.output[-BLOCK:] and tokenizer.eos_id not in short.output[:-BLOCK]
        assert long.output[: len(short.output)] == short.output  # earlier blocks never see later ones
        assert runners[0].forwards_of(short.rid) < runners[1].forwards_of(long.rid)


def test_a_literal_mask_in_the_prompt_is_never_decoded(model):
    net, tokenizer = model
    algorithm = make(LRD, NAME, LRD_SETTINGS, tokenizer.mask_id, True)
    runner = TinyModelRunner(net, BLOCK)
    prompt = tokenizer.encode("x=[1,2,3]; print(x[::2])")
    prompt.insert(3, tokenizer.mask_id)
    request = Request("r0", prompt, 2)
    serve(algorithm, runner, [request])
    assert request.prompt[3] == tokenizer.mask_id and tokenizer.mask_id not in request.output
    assert len(request.output) == 2 * BLOCK - len(prompt) % BLOCK


# --- tensor parallelism ------------------------------------------------------------------------


def _shard_of(full: VocabParallelEmbedding, rank: int, tp: int) -> VocabParallelEmbedding:
    """Rank `rank` of `tp` of SGLang's vocabulary-parallel embedding, with SGLang's own shard bounds
    (built without a process group, so with enable_tp=False, then given the rank's shard)."""
    vocab, dim = full.org_vocab_size, full.embedding_dim
    shard = VocabParallelEmbedding(vocab, dim, enable_tp=False)
    padded = pad_vocab_size(vocab, 64 * tp)
    shard.tp_size = tp
    shard.shard_indices = VocabParallelEmbedding._get_indices(padded, padded, vocab, vocab, rank, tp)
    start, end = shard.shard_indices.org_vocab_start_index, shard.shard_indices.org_vocab_end_index
    shard.weight = torch.nn.Parameter(torch.zeros(padded // tp, dim))
    shard.weight.data[: end - start] = full.weight.data[start:end]
    return shard


@pytest.mark.parametrize(("vocab", "mask_id", "tp"), [(160, 150, 2), (1000, 3, 4), (157184, 156895, 8)])
def test_vocab_parallel_shares_of_the_mixture_sum_to_the_unsharded_mixture(vocab, mask_id, tp):
    dim = 16
    full = VocabParallelEmbedding(vocab, dim, enable_tp=False)
    full.weight.data[:vocab] = torch.randn(vocab, dim, generator=torch.Generator().manual_seed(0))
    logits = torch.randn(2, 8, vocab, generator=torch.Generator().manual_seed(1)) * 4
    recipe = mixture.mixture_recipe(
        mixture.log_probs(logits, mask_id), top_p=0.9, r_f=0.2, alpha_form="one_minus_entropy", cap=64
    )
    whole = embed_mixture(recipe, full, mask_id)
    shares = []
    for rank in range(tp):
        table, first_row, size = embedding_shard(_shard_of(full, rank, tp))
        assert size == tp
        shares.append(recipe.embed(table, mask_id, first_row))
    torch.testing.assert_close(torch.stack(shares).sum(0), whole, rtol=1e-5, atol=1e-6)
    reference = mixture.mixture_embeddings(
        mixture.log_probs(logits, mask_id),
        full.weight[:vocab],
        mask_id,
        top_p=0.9,
        r_f=0.2,
        alpha_form="one_minus_entropy",
        cap=64,
    )
    torch.testing.assert_close(whole, reference)
