"""What a run records, how it resumes after a hard kill, and how it copes with bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from testkit.flower import LocalSuperLink
from testkit.render import SMOKE_OVERRIDES, install, render

from .smoke import final_adapter, train_rendered

pytestmark = pytest.mark.slow


def metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_three_rounds_are_recorded_plotted_and_reported(superlink, tiny_model, flashcards_dir, tmp_path):
    outcome, results = train_rendered(
        superlink, tmp_path, {"base_model": str(tiny_model("qwen2"))}, flashcards_dir,
        **{"num-server-rounds": 3, "train.save-every-round": 3},
    )
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    run_dir = final_adapter(results, 3).parent
    record = metrics(run_dir)
    rounds = record["rounds"]
    assert [entry["round"] for entry in rounds] == [1, 2, 3]
    assert all(math.isfinite(entry["train_loss"]) for entry in rounds)
    rates = [entry["learning_rate"] for entry in rounds]
    assert rates[0] > rates[1] > rates[2] > 0
    assert all(entry["clients"] == 2 and entry["failures"] == 0 for entry in rounds)
    assert all(entry["comm_mb"] > 0 and entry["seconds"] > 0 for entry in rounds)
    totals = record["totals"]
    assert totals["comm_total_mb"] == pytest.approx(sum(entry["comm_mb"] for entry in rounds))
    assert totals["base_model_loads"] == totals["client_processes"] >= 1
    assert totals["server_peak_rss_mb"] > 0 and totals["client_peak_rss_mb"] > 0
    assert (run_dir / "train_loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "Run summary" in outcome.output and "base model loads" in outcome.output

    project = next((tmp_path / "rendered").iterdir())
    benchmarks = project / "benchmarks"
    benchmarks.mkdir()
    for name, score in {"pubmedqa": 0.6, "medmcqa": 0.3, "medqa": 0.2, "careqa": 0.1}.items():
        (benchmarks / f"acc_{name}_fl.txt").write_text(f"Accuracy: {score}. ")
    package = project.name.replace("-", "_")
    subprocess.run(
        [sys.executable, "-m", f"{package}.report", "--results-dir", str(results)],
        cwd=project, check=True, capture_output=True,
    )
    readme = (project / "README.md").read_text()
    assert f"Run `{run_dir.name}`: 3 rounds" in readme
    assert f"{totals['comm_total_mb']:.2f} MB of 200,000 MB" in readme
    assert "train_loss.png)" in readme and "| PubMedQA | 60.00 |" in readme and "| CareQA | 10.00 |" in readme
    assert "| average (the leaderboard's ranking) | 30.00 |" in readme
    assert "No run recorded yet" not in readme


def test_a_hard_killed_run_resumes_from_its_checkpoint(tiny_model, flashcards_dir, tmp_path):
    project = render(tmp_path / "rendered", base_model=str(tiny_model("llama")))
    install(project, tmp_path / "site")
    results = tmp_path / "results"
    overrides = {**SMOKE_OVERRIDES, "num-server-rounds": 3, "static.dataset.name": str(flashcards_dir),
                 "train.results-dir": str(results)}
    first = LocalSuperLink(tmp_path / "home-1")
    first.start(cwd=tmp_path)
    client = first.start_run(project, overrides)
    try:
        deadline = time.monotonic() + 300
        while not list(results.glob("*/peft_1")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list(results.glob("*/peft_1")), "no first checkpoint appeared"
    finally:
        first.kill()
        client.kill()
        client.wait()
    run_dir = next(results.iterdir())
    killed_at = max(int(path.name.split("_")[1]) for path in run_dir.glob("peft_*") if "." not in path.name)
    assert killed_at < 3, "the run finished before it could be killed"

    with LocalSuperLink(tmp_path / "home-2") as second:
        second.start(cwd=tmp_path)
        outcome = second.run(project, {**overrides, "train.resume": True})
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert f"Resumed from {run_dir / f'peft_{killed_at}'}: round {killed_at} of 3 done" in outcome.output
    assert (run_dir / "peft_3" / "adapter_model.safetensors").is_file()
    rounds = metrics(run_dir)["rounds"]
    assert [entry["round"] for entry in rounds] == [1, 2, 3]
    rates = [entry["learning_rate"] for entry in rounds]
    assert rates[0] > rates[1] > rates[2], "the schedule did not continue"
    state = json.loads((run_dir / "peft_3" / "training_state.json").read_text())
    assert state["round"] == 3
    assert state["comm_total_mb"] == pytest.approx(sum(entry["comm_mb"] for entry in rounds), rel=1e-6)


def test_a_failing_client_does_not_end_the_round(superlink, tiny_model, tmp_path):
    one_row = tmp_path / "one-row"
    one_row.mkdir()
    (one_row / "train.jsonl").write_text(
        json.dumps({"instruction": "Answer", "input": "What is sepsis?", "output": "A response."}) + "\n"
    )
    outcome, results = train_rendered(superlink, tmp_path, {"base_model": str(tiny_model("llama"))}, one_row)
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert "partition 1 of 2 is empty" in outcome.output
    run_dir = final_adapter(results, 2).parent
    assert [(e["clients"], e["failures"]) for e in metrics(run_dir)["rounds"]] == [(1, 1), (1, 1)]
    leaderboard = json.loads((run_dir / "leaderboard.json").read_text())
    assert leaderboard["eligible"] is False
    assert any("2 SuperNodes, the Medical challenge uses 20" in rule for rule in leaderboard["broken_rules"])
    assert any("static.dataset.name" in rule for rule in leaderboard["broken_rules"])
    assert "Leaderboard rule broken" in outcome.output


def test_a_model_path_that_does_not_exist_is_named_before_training(superlink, flashcards_dir, tmp_path):
    outcome, results = train_rendered(
        superlink, tmp_path, {}, flashcards_dir, **{"model.name": "/no/such/model-dir"}
    )
    assert outcome.status == "finished:failed"
    assert "model.name = '/no/such/model-dir' cannot be loaded" in outcome.output
    assert "[ROUND 1" not in outcome.output
    assert not results.exists() or not list(results.glob("*/peft_*"))
