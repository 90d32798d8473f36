"""End to end on Flower's Deployment Engine: a SuperLink and two SuperNodes, each a process on loopback.

Each SuperNode passes its partition with `--node-config`; the rendered baseline runs unchanged
through `flwr run` on the `deployment` connection.
"""

from __future__ import annotations

import re

import pytest
from flwr.supercore.exit import ExitCode

from testkit.deployment import CONNECTION, DeploymentSuperLink, make_supernode_key, make_tls_files
from testkit.flower import RunOutcome

from .smoke import assert_trained, final_adapter, train_rendered
from .variants import SMOKE_TARGETS

pytestmark = pytest.mark.slow


def assert_every_supernode_trained(outcome: RunOutcome) -> None:
    """The run completed on the deployment connection, both SuperNodes replying in both rounds."""
    assert outcome.status == "finished:completed", outcome.output[-4000:]
    assert f"Using SuperLink: {CONNECTION} (" in outcome.output
    assert "[ROUND 2/2]" in outcome.output
    replies = re.findall(r"Received (\d+) results and (\d+) failures", outcome.output)
    assert replies and set(replies) == {("2", "0")}, replies


def test_baseline_trains_on_a_superlink_and_two_supernodes(tiny_model, flashcards_dir, tmp_path):
    model_dir = tiny_model("llama")
    with DeploymentSuperLink(tmp_path / "flwr-home", num_supernodes=2) as link:
        link.start(cwd=tmp_path)
        outcome, results = train_rendered(link, tmp_path, {"base_model": str(model_dir)}, flashcards_dir)
    assert_every_supernode_trained(outcome)
    assert_trained(final_adapter(results, 2), model_dir, SMOKE_TARGETS["llama"])


def test_baseline_trains_over_tls_with_authenticated_supernodes(tiny_model, flashcards_dir, tmp_path):
    model_dir = tiny_model("llama")
    tls = make_tls_files(tmp_path / "tls")
    with DeploymentSuperLink(tmp_path / "flwr-home", num_supernodes=2, tls=tls, supernode_auth=True) as link:
        link.start(cwd=tmp_path)
        # A SuperNode whose key was never registered is turned away.
        stranger_key = tmp_path / "stranger-key"
        make_supernode_key(stranger_key)
        stranger = link.start_supernode("stranger", partition_id=0, private_key=stranger_key, max_retries=0)
        assert stranger.wait(timeout=120) != 0
        log = link.supernode_log("stranger").read_text()
        assert f"Exit Code: {int(ExitCode.SUPERNODE_CONNECTION_ERROR)}" in log, log
        assert "Failed to activate SuperNode" in log, log
        outcome, results = train_rendered(link, tmp_path, {"base_model": str(model_dir)}, flashcards_dir)
    assert_every_supernode_trained(outcome)
    assert_trained(final_adapter(results, 2), model_dir, SMOKE_TARGETS["llama"])
