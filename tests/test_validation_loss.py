"""The validation loss beside the training loss: in the plot (axis from zero) and the README."""

from __future__ import annotations


def test_plot_and_report_show_the_validation_loss(rendered_package, tmp_path):
    run_record, report = rendered_package("run_record"), rendered_package("report")
    record = run_record.RunRecord(tmp_path / "run")
    for server_round, (train, validation) in enumerate(((2.0, 2.5), (1.5, 2.25)), start=1):
        record.add_round(run_record.RoundRecord(
            round=server_round, train_loss=train, learning_rate=1e-4, comm_mb=1.0, seconds=1.0,
            clients=2, failures=0, eval_loss=validation, eval_clients=2,
        ))
    axes = record.loss_figure().axes[0]
    lines = {line.get_label(): list(line.get_ydata()) for line in axes.get_lines()}
    assert lines == {"train": [2.0, 1.5], "validation (global adapter)": [2.5, 2.25]}
    assert axes.get_ylim()[0] == 0 and axes.get_ylim()[1] >= 2.5
    assert "last validation loss: 2.2500 (round 2)" in record.summary()
    medical = rendered_package("challenges").challenge("medical")
    section = report.results_section(record.run_dir, tmp_path, medical, {}, [])
    assert "final validation loss 2.2500" in section
    assert "| 1 | 2.0000 | 2.5000 |" in section and "| 2 | 1.5000 | 2.2500 |" in section


def test_run_totals_say_their_units_and_the_peak_is_never_below_a_round(rendered_package, tmp_path):
    run_record = rendered_package("run_record")
    record = run_record.RunRecord(tmp_path / "run")
    above_any_peak = run_record.peak_rss_mb() + run_record.current_rss_mb() + 1000.0
    record.add_round(run_record.RoundRecord(
        round=1, train_loss=1.0, learning_rate=1e-4, comm_mb=2000.0, seconds=1.0, clients=2, failures=0,
        server_rss_mb=above_any_peak,
    ))
    totals = record.totals()
    assert totals["server_peak_rss_mb"] >= above_any_peak
    assert totals["comm_budget_used_percent"] == 1.0  # 2,000 of 200,000 MB
    assert "comm_budget_used" not in totals
    assert "2000.00 MB of 200,000 MB (1.0000%)" in record.summary()
