"""A real 3-round run (DoRA, validation each round), swept, packed, and its budget checked; and
a run planned past the budget, refused before training."""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.benchmark_fixtures import write_benchmark_fixtures
from testkit.flower import LocalSuperLink, RunOutcome
from testkit.render import SMOKE_OVERRIDES

from .conftest import RenderedPackage
from .smoke import final_adapter, train_rendered

pytestmark = pytest.mark.slow

BENCHMARKS = ("pubmedqa", "medmcqa", "medqa", "careqa")
TITLES = ("PubMedQA", "MedMCQA", "MedQA", "CareQA")
RUN = {
    "num-server-rounds": 3, "train.save-every-round": 1, "strategy.fraction-evaluate": 1.0,
    # large steps, so that the rounds' adapters answer differently
    "train.learning-rate-max": 0.05, "train.learning-rate-min": 0.01,
}
PAST_THE_BUDGET = 1_000_000  # rounds


@dataclass
class TrainedRun:
    package: RenderedPackage
    run_dir: Path
    outcome: RunOutcome
    refused: RunOutcome  # the same project, planned past the budget
    refused_results: Path
    data_dir: Path
    base_model: str


@pytest.fixture(scope="session")
def trained_run(tiny_model, flashcards_dir, tmp_path_factory):
    """A Medical project (a package name of its own, importable) trained for 3 rounds through
    `flwr run`; then the same project started with a plan past the budget."""
    root = tmp_path_factory.mktemp("sweep-run")
    answers = {"base_model": str(tiny_model("llama")), "project_slug": "flowertune-sweep-test",
               "peft_use_dora": True}
    with LocalSuperLink(root / "home", num_supernodes=2) as link:
        link.start(cwd=root)
        outcome, results = train_rendered(link, root, answers, flashcards_dir, **RUN)
        assert outcome.status == "finished:completed", outcome.output[-4000:]
        project = next((root / "rendered").iterdir())
        refused_results = root / "refused-results"
        refused = link.run(project, {**SMOKE_OVERRIDES, **RUN, "num-server-rounds": PAST_THE_BUDGET,
                                     "static.dataset.name": str(flashcards_dir),
                                     "train.results-dir": str(refused_results)})
    data_dir = write_benchmark_fixtures(root / "benchmarks-data")
    sys.path.insert(0, str(project))
    yield TrainedRun(RenderedPackage(project), final_adapter(results, 3).parent, outcome, refused,
                     refused_results, data_dir, answers["base_model"])
    sys.path.remove(str(project))


def eval_flags(run: TrainedRun) -> list[str]:
    return ["--data-dir", str(run.data_dir), "--quantization", "none", "--batch-size", "4"]


def count_base_model_loads(monkeypatch: pytest.MonkeyPatch) -> list:
    """Calls of `AutoModelForCausalLM.from_pretrained` from now on (their arguments)."""
    from transformers import AutoModelForCausalLM

    calls, load = [], AutoModelForCausalLM.from_pretrained

    def counted(*args, **kwargs):
        calls.append(args)
        return load(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counted)
    return calls


@pytest.fixture
def base_model_loads(monkeypatch):
    return count_base_model_loads(monkeypatch)


@dataclass
class Sweep:
    printed: str
    base_model_loads: list


@pytest.fixture(scope="session")
def first_sweep(trained_run):
    """The first sweep of the trained run: what it printed and the base model loads it made."""
    import contextlib
    import io

    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as monkeypatch, contextlib.redirect_stdout(printed):
        loads = count_base_model_loads(monkeypatch)
        trained_run.package("sweep").main([str(trained_run.run_dir), *eval_flags(trained_run)])
    return Sweep(printed.getvalue(), loads)


def sweep_json(run_dir: Path) -> dict:
    return json.loads((run_dir / "sweep.json").read_text())


def outputs(evaluation_dir: Path, name: str) -> list[str]:
    lines = (evaluation_dir / f"generation_{name}_fl.jsonl").read_text().splitlines()
    return [json.loads(line)["output"] for line in lines]


def test_the_plan_made_before_round_1_is_what_the_run_communicated(trained_run):
    record = json.loads((trained_run.run_dir / "leaderboard.json").read_text())
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    assert record["comm_projected_mb"] == pytest.approx(metrics["totals"]["comm_total_mb"], rel=1e-12)
    plan = record["comm_plan"]
    assert (plan["rounds"], plan["train_clients"], plan["evaluate_clients"]) == (3, 2, 2)
    assert plan["first_download_mb"] < plan["adapter_mb"]  # DoRA magnitudes join with the first replies
    assert re.search(rf"Communication plan: {record['comm_projected_mb']:,.2f} MB, 0\.00% of the "
                     r"200,000 MB budget \(3 rounds x 2 of 2 clients", trained_run.outcome.output)


def test_a_run_planned_past_the_budget_is_refused_before_training(trained_run):
    refused = trained_run.refused
    assert refused.status == "finished:failed"
    message = re.search(r"Refusing to start: the run would communicate ([\d,]+) MB, over the 200,000 MB "
                        r"budget \(.*\): num-server-rounds = 1000000, .*strategy.allow-over-budget = true",
                        refused.output)
    assert message, refused.output[-3000:]
    # the trained run's rounds: the first, and each later one, as recorded
    rounds = json.loads((trained_run.run_dir / "metrics.json").read_text())["rounds"]
    expected = rounds[0]["comm_mb"] + (PAST_THE_BUDGET - 1) * rounds[1]["comm_mb"]
    assert int(message.group(1).replace(",", "")) == round(expected)
    assert "[ROUND 1" not in refused.output
    assert not trained_run.refused_results.exists()


def test_the_sweep_scores_every_saved_round_loading_the_base_model_once(trained_run, first_sweep):
    run_dir = trained_run.run_dir
    assert [args[0] for args in first_sweep.base_model_loads] == [trained_run.base_model]
    record = sweep_json(run_dir)
    checkpoint = trained_run.package("checkpoint")
    assert [entry["round"] for entry in record["rounds"]] == [1, 2, 3]
    for entry in record["rounds"]:
        assert set(entry["scores"]) == set(BENCHMARKS)
        assert entry["average"] == pytest.approx(sum(entry["scores"].values()) / 4)
        assert entry["comm_total_mb"] == checkpoint.communicated_mb(run_dir / f"peft_{entry['round']}")
    communicated = [entry["comm_total_mb"] for entry in record["rounds"]]
    assert communicated == sorted(communicated)
    assert record["best_round"] in (1, 2, 3)
    assert (run_dir / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert f"Best round: {record['best_round']} (" in first_sweep.printed


def test_each_rounds_scores_equal_a_fresh_eval_of_its_adapter(trained_run, first_sweep, tmp_path):
    evaluation = trained_run.package("eval")
    swept = trained_run.run_dir / "evaluation"
    assert outputs(swept / "peft_1", "medqa") != outputs(swept / "peft_3", "medqa"), \
        "the rounds' adapters answer alike: this test could not tell them apart"
    for server_round in (1, 3):
        fresh = tmp_path / f"peft_{server_round}"
        adapter = trained_run.run_dir / f"peft_{server_round}"
        evaluation.main(["--base-model-name-path", trained_run.base_model, *eval_flags(trained_run),
                         "--peft-path", str(adapter), "--output-dir", str(fresh)])
        for name in BENCHMARKS:
            assert outputs(fresh, name) == outputs(swept / adapter.name, name), (server_round, name)
            accuracy = f"acc_{name}_fl.txt"
            assert (fresh / accuracy).read_text() == (swept / adapter.name / accuracy).read_text()


def test_a_sweep_run_again_scores_only_what_is_missing(trained_run, first_sweep, base_model_loads,
                                                       tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run.run_dir, run_dir, ignore=shutil.ignore_patterns("submission"))
    sweep = trained_run.package("sweep")
    sweep.main([str(run_dir), *eval_flags(trained_run)])
    assert base_model_loads == []
    assert "Every saved round already has pubmedqa, medmcqa, medqa, careqa" in capsys.readouterr().out
    record = sweep_json(run_dir)
    kept = [entry for entry in record["rounds"] if entry["round"] != 2]
    (run_dir / "sweep.json").write_text(json.dumps({**record, "rounds": kept}))
    (run_dir / "evaluation" / "peft_2" / "acc_pubmedqa_fl.txt").unlink()
    sweep.main([str(run_dir), *eval_flags(trained_run)])
    assert len(base_model_loads) == 1
    assert sweep_json(run_dir)["rounds"] == record["rounds"]
    assert (run_dir / "evaluation" / "peft_2" / "acc_pubmedqa_fl.txt").is_file()
    with pytest.raises(SystemExit):
        sweep.main([str(run_dir), *eval_flags(trained_run)[:-1], "2"])
    assert "was scored with --batch-size 4, not 2; give the same flags, or --fresh" in capsys.readouterr().err


def test_submit_packs_the_sweeps_best_round_and_says_what_breaks_the_rules(trained_run, first_sweep, capsys):
    run_dir = trained_run.run_dir
    best = sweep_json(run_dir)["best_round"]
    entry = next(entry for entry in sweep_json(run_dir)["rounds"] if entry["round"] == best)
    assert trained_run.package("submit").main([str(run_dir)]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert "error: the run broke a rule: 2 SuperNodes, the Medical challenge uses 20" in errors
    assert all(line.startswith("error: ") for line in errors) and len(errors) == 2  # nodes, data set
    submission = run_dir / "submission"
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        assert (submission / "adapter" / name).read_bytes() == (run_dir / f"peft_{best}" / name).read_bytes()
    assert sorted(path.name for path in (submission / "evaluation").iterdir()) == sorted(
        path.name for path in (run_dir / "evaluation" / f"peft_{best}").iterdir())
    readme = (submission / "README.md").read_text()
    scores = " | ".join(f"{100 * entry['scores'][name]:.2f}" for name in BENCHMARKS)
    assert f"| `{trained_run.base_model}` | {scores} | {100 * entry['average']:.2f} | " in readme
    assert "| " + " | ".join(TITLES) + " | Average | Communication |" in readme
    assert f"round {best} (the sweep's best round)" in readme and "**Not ready to submit:**" in readme
    assert "| `num-server-rounds` | `3` | `200` |" in readme
    communication = json.loads((submission / "communication.json").read_text())
    assert communication["comm_mb"] == entry["comm_total_mb"]
    assert json.loads((submission / "run_config.json").read_text())["num-server-rounds"] == 3
    assert json.loads((submission / "leaderboard.json").read_text())["eligible"] is False
    assert trained_run.package("submit").main([str(run_dir), "--force"]) == 0
    assert capsys.readouterr().err.startswith("warning: the run broke a rule")


def test_submit_names_a_benchmark_without_a_result(trained_run, first_sweep, tmp_path, capsys):
    eval_dir = tmp_path / "evaluation"
    shutil.copytree(trained_run.run_dir / "evaluation" / "peft_2", eval_dir)
    (eval_dir / "acc_careqa_fl.txt").unlink()
    submit = trained_run.package("submit")
    assert submit.main([str(trained_run.run_dir), "--round", "2", "--eval-dir", str(eval_dir)]) == 1
    errors = capsys.readouterr().err
    assert re.search(r"^error: no CareQA result \(careqa, run name 'fl'\) in .*: run `python -m "
                     r"flowertune_sweep_test.sweep ", errors, re.M)
    readme = (trained_run.run_dir / "submission" / "README.md").read_text()
    assert re.search(r"\| [\d.]+ \| [\d.]+ \| [\d.]+ \| missing \| missing \| ", readme)
    assert "round 2 (--round)" in readme
    forced = submit.main([str(trained_run.run_dir), "--round", "2", "--eval-dir", str(eval_dir), "--force"])
    assert forced == 0
