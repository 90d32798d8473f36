"""The run record's loss plot shows its scale honestly."""

from __future__ import annotations


def test_loss_axis_starts_at_zero_without_an_offset(rendered_package, tmp_path):
    run_record = rendered_package("run_record")
    record = run_record.RunRecord(tmp_path / "run")
    for server_round, loss in ((1, 1.0000), (2, 1.0002), (3, 0.9999)):
        record.add_round(run_record.RoundRecord(
            round=server_round, train_loss=loss, learning_rate=1e-4, comm_mb=1.0, seconds=1.0,
            clients=2, failures=0,
        ))
    axes = record.loss_figure().axes[0]
    bottom, top = axes.get_ylim()
    assert bottom == 0 and 1.0002 < top < 1.1
    assert not axes.yaxis.get_major_formatter().get_useOffset()
    assert (tmp_path / "run" / "train_loss.png").read_bytes()[:4] == b"\x89PNG"
