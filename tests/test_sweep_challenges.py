"""The sweep of the General NLP and Code projects (Medical's is in test_sweep_submit.py; Finance
shares Medical's path, `--datasets` over `text_tasks`): two saved rounds of a run, scored on one
benchmark each as a fresh `eval` scores them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from testkit.benchmark_fixtures import write_mmlu_fixtures
from testkit.code_fixtures import write_code_fixtures

pytestmark = pytest.mark.slow

# challenge -> (how its local copies are written, the flags that pick one benchmark, its task,
# and the file of a round's answers that the fresh `eval` must reproduce)
CASES = {
    "general-nlp": (write_mmlu_fixtures, ["--category", "stem"], "mmlu_stem",
                    "generation_mmlu_stem_fl.jsonl"),
    "code": (write_code_fixtures, ["--datasets", "humaneval", "--greedy", "--max-length-generation", "256"],
             "humaneval", "generations_humaneval_fl.json"),
}


def saved_run(run_dir: Path, base_model: Path) -> Path:
    """A run folder with two saved rounds: LoRA adapters of different random weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    for server_round in (1, 2):
        torch.manual_seed(server_round)
        config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                            task_type="CAUSAL_LM")
        adapter = run_dir / f"peft_{server_round}"
        get_peft_model(AutoModelForCausalLM.from_pretrained(base_model), config).save_pretrained(adapter)
        (adapter / "training_state.json").write_text(json.dumps({"round": server_round,
                                                                 "comm_total_mb": 1.5 * server_round}))
    return run_dir


@pytest.mark.parametrize("challenge", CASES)
def test_the_sweep_of_each_challenge_scores_its_rounds_as_eval_does(challenge, rendered_challenge, tiny_model,
                                                                    tmp_path):
    write_data, flags, task, answers = CASES[challenge]
    package, base_model = rendered_challenge(challenge), tiny_model("llama")
    data_dir = write_data(tmp_path / "data")
    flags = ["--base-model-name-path", str(base_model), "--data-dir", str(data_dir), "--batch-size", "4",
             *flags]
    if challenge != "code":
        flags += ["--quantization", "none"]
    run_dir = saved_run(tmp_path / "run", base_model)
    package("sweep").main([str(run_dir), *flags])
    record = json.loads((run_dir / "sweep.json").read_text())
    rounds = [(entry["round"], list(entry["scores"]), entry["comm_total_mb"]) for entry in record["rounds"]]
    assert rounds == [(1, [task], 1.5), (2, [task], 3.0)]
    assert record["best_round"] in (1, 2)
    swept = [(run_dir / "evaluation" / f"peft_{n}" / answers).read_text() for n in (1, 2)]
    assert swept[0] != swept[1], "the two adapters answer alike: this test could not tell them apart"
    # Code merges each adapter and takes it out again: later rounds see the base weights up to
    # float32 rounding, so only the first round is compared exactly there.
    for server_round in (1,) if challenge == "code" else (1, 2):
        fresh = tmp_path / f"fresh-{server_round}"
        package("eval").main([*flags, "--peft-path", str(run_dir / f"peft_{server_round}"),
                              "--output-dir", str(fresh)])
        assert (fresh / answers).read_text() == swept[server_round - 1]
    assert package("evaluation." + package("eval").this_challenge().evaluation_module).read_scores(
        run_dir / "evaluation" / "peft_2", "fl") == record["rounds"][1]["scores"]
