"""Fast-dLLM's lm-eval entry point (``eval_llada.py``'s ``llada_dist``) with ``sampler=lrd``, end to
end on a local task: the embedded default model, our arithmetic test problems as a JSON-lines
dataset, no hub. The model directory gets a Hugging Face tokenizer equivalent to our char tokenizer,
because upstream's harness loads one with ``AutoTokenizer``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lrd_plugin.integrations.fast_dllm.layout import ENV_VAR, Layout
from lrd_plugin.models import CharTokenizer
from lrd_plugin.tasks import generate_examples, reference_answer

pytest.importorskip("lm_eval", reason="lm-eval 0.4.8 is not installed (integration_tests/run.sh installs it)")
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "lrd_plugin" / "default_model"
TASK = """task: lrd_arith
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["<eos>"]
filter_list:
  - name: final
    filter:
      - function: regex
        regex_pattern: "#### (-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""


def hf_tokenizer(tokenizer: CharTokenizer, directory: Path) -> None:
    """Write a PreTrainedTokenizerFast with the same ids: one token per character, <bos> first."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {name: i for i, name in enumerate(tokenizer.specials)}
    vocab |= {char: tokenizer.encode(char, add_bos=False)[0] for char in tokenizer.chars}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", tokenizer.bos_id)])
    core.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", mask_token="<mask>"
    )
    fast.save_pretrained(directory)


@pytest.fixture(scope="module")
def workspace(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (DEFAULT_MODEL / "model.safetensors").exists():
        pytest.skip("no embedded default checkpoint")
    root = tmp_path_factory.mktemp("lm_eval")
    model_dir = root / "tiny-llada"
    model_dir.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(DEFAULT_MODEL / name, model_dir / name)
    tokenizer = CharTokenizer.load(DEFAULT_MODEL)
    hf_tokenizer(tokenizer, model_dir)
    examples = generate_examples("arith", "test", 6, seed=0)
    rows = [{"prompt": e.prompt, "answer": reference_answer("arith", e.prompt)} for e in examples]
    (root / "arith.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "lrd_arith.yaml").write_text(TASK.format(data=root / "arith.jsonl"))
    return root


def run_eval(workspace: Path, layout: Layout, extra: str) -> tuple[float, int, str]:
    """Run the launcher; returns (exact match, total NFE printed by upstream's harness, output)."""
    mask_id = CharTokenizer.load(DEFAULT_MODEL).mask_id
    model_args = (
        f"model_path={workspace / 'tiny-llada'},gen_length=64,steps=64,block_length=32,use_cache=True,"
        f"threshold=0.9,mask_id={mask_id},show_speed=True{extra}"
    )
    out_dir = workspace / f"out{len(list(workspace.glob('out*')))}"
    env = {**os.environ, ENV_VAR: str(layout.root), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [
        sys.executable, "-m", "lrd_plugin.integrations.fast_dllm.evaluate", "llada",
        "--model", "llada_dist", "--model_args", model_args, "--tasks", "lrd_arith",
        "--include_path", str(workspace), "--output_path", str(out_dir), "--batch_size", "1", "--device", "cpu",
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-4000:]
    results = json.loads(next(out_dir.rglob("results_*.json")).read_text())["results"]["lrd_arith"]
    nfe = int(re.search(r"Total NFE is (\d+)", log).group(1))  # type: ignore[union-attr]
    return results["exact_match,final"], nfe, log


def test_llada_dist_with_sampler_lrd_runs_end_to_end(workspace: Path, layout: Layout) -> None:
    if layout.legacy:
        pytest.skip("24cc59e's generation loops take a batch of one prompt only; run on a9b81e4")
    base_score, base_nfe, _ = run_eval(workspace, layout, "")
    off_score, off_nfe, _ = run_eval(
        workspace, layout, ",sampler=lrd,lrd_refinement=False,lrd_mixing=False,lrd_early_stop=False"
    )
    lrd_score, lrd_nfe, _ = run_eval(workspace, layout, ",sampler=lrd,lrd_r_f=0.15")
    assert (off_score, off_nfe) == (base_score, base_nfe)  # the switch alone changes nothing
    assert 0.0 <= lrd_score <= 1.0 and lrd_nfe > 0
    assert lrd_nfe != base_nfe  # LRD's phases ran (refinement forwards or early stops)


def test_a_typo_in_lrd_settings_fails_at_start(workspace: Path, layout: Layout) -> None:
    with pytest.raises(AssertionError, match="unknown LRD setting lrd_rf"):
        run_eval(workspace, layout, ",sampler=lrd,lrd_rf=0.2")
