"""What every run records: `metrics.json`, the loss plot, the run config and a closing summary."""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass, field
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .challenges import COMMUNICATION_BUDGET_MB

METRICS_FILE = "metrics.json"
LOSS_PLOT = "train_loss.png"
RUN_CONFIG_FILE = "run_config.json"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def write_json(path: Path, data: object) -> None:
    """Write JSON through a temporary file, so readers never see half a file."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(staging, path)


def write_run_config(run_dir: Path, run_config: dict) -> None:
    """Keep the run config the run started with (`run_config.json`), overrides included."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / RUN_CONFIG_FILE, dict(run_config))


@dataclass
class RoundRecord:
    """One federated round, as the server saw it."""

    round: int
    train_loss: float | None
    learning_rate: float | None
    comm_mb: float
    seconds: float
    clients: int
    failures: int
    server_rss_mb: float = field(default_factory=current_rss_mb)
    eval_loss: float | None = None
    eval_clients: int = 0
    # partition id -> the partition rows of the node's first batch this round
    first_batches: dict[str, list[int]] = field(default_factory=dict)


@dataclass
class ClientProcess:
    """Figures one client process reported about itself."""

    base_model_loads: int = 0
    peak_rss_mb: float = 0.0
    cuda_peak_mb: float = 0.0


@dataclass
class RunRecord:
    """The run's rounds and totals, saved as `metrics.json` after every round."""

    run_dir: Path
    rounds: list[RoundRecord] = field(default_factory=list)
    client_processes: dict[str, ClientProcess] = field(default_factory=dict)
    server_rss_after_imports_mb: float = field(default_factory=peak_rss_mb)

    def note_client(self, metrics: dict) -> None:
        """Keep the newest figures a client process sent with its reply."""
        process = self.client_processes.setdefault(str(int(metrics["process-id"])), ClientProcess())
        process.base_model_loads = int(metrics["base-model-loads"])
        process.peak_rss_mb = max(process.peak_rss_mb, float(metrics["peak-rss-mb"]))
        process.cuda_peak_mb = max(process.cuda_peak_mb, float(metrics["cuda-peak-mb"]))

    def server_peak_rss_mb(self) -> float:
        """The server's peak memory: never below what a round or this moment measured (the
        kernel's high-water mark can lag behind the resident size it was read beside)."""
        return max(peak_rss_mb(), current_rss_mb(), *(entry.server_rss_mb for entry in self.rounds))

    @property
    def comm_total_mb(self) -> float:
        return sum(entry.comm_mb for entry in self.rounds)

    def totals(self) -> dict:
        """Run totals: communication, peak memory, base model loads."""
        processes = self.client_processes.values()
        return {
            "rounds": len(self.rounds),
            "comm_total_mb": self.comm_total_mb,
            "comm_budget_mb": COMMUNICATION_BUDGET_MB,
            "comm_budget_used_percent": 100 * self.comm_total_mb / COMMUNICATION_BUDGET_MB,
            "server_peak_rss_mb": self.server_peak_rss_mb(),
            "server_rss_after_imports_mb": self.server_rss_after_imports_mb,
            "client_peak_rss_mb": max((p.peak_rss_mb for p in processes), default=0.0),
            "client_cuda_peak_mb": max((p.cuda_peak_mb for p in processes), default=0.0),
            "client_processes": len(self.client_processes),
            "base_model_loads": sum(p.base_model_loads for p in processes),
            "base_model_loads_per_process": {
                pid: p.base_model_loads for pid, p in self.client_processes.items()
            },
        }

    def add_round(self, entry: RoundRecord) -> None:
        """Record a finished round, then rewrite `metrics.json` and the loss plot."""
        self.rounds.append(entry)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.run_dir / METRICS_FILE, self.as_dict())
        self.plot()

    def as_dict(self) -> dict:
        return {
            "rounds": [asdict(entry) for entry in self.rounds],
            "totals": self.totals(),
            "client_processes": {pid: asdict(p) for pid, p in self.client_processes.items()},
        }

    def plot(self) -> Path:
        """Save the loss figure beside the run's records."""
        path = self.run_dir / LOSS_PLOT
        self.loss_figure().savefig(path, dpi=100)
        return path

    def loss_figure(self) -> Figure:
        """The example-weighted training loss per round and, where the run evaluates, the
        validation loss beside it (headless: no pyplot, no display)."""
        trained = [entry for entry in self.rounds if entry.train_loss is not None]
        evaluated = [entry for entry in self.rounds if entry.eval_loss is not None]
        figure = Figure(figsize=(6, 3.5))
        axes = figure.subplots()
        axes.plot([e.round for e in trained], [e.train_loss for e in trained], marker="o", label="train")
        if evaluated:
            axes.plot([e.round for e in evaluated], [e.eval_loss for e in evaluated], marker="s",
                      label="validation (global adapter)")
            axes.legend()
        axes.set_xlabel("round")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_ylabel("loss (example-weighted)")
        # From zero and without an offset: a change of 0.02% must not look like a cliff.
        losses = [e.train_loss for e in trained] + [e.eval_loss for e in evaluated]
        axes.set_ylim(0, 1.05 * max(losses, default=1.0))
        axes.ticklabel_format(axis="y", useOffset=False, style="plain")
        axes.set_title("Federated training and validation loss" if evaluated else "Federated training loss")
        axes.grid(alpha=0.3)
        figure.tight_layout()
        return figure

    def summary(self) -> str:
        """A few lines a person reads at the end of the run."""
        totals = self.totals()
        last = next((e for e in reversed(self.rounds) if e.train_loss is not None), None)
        loss = f"{last.train_loss:.4f} (round {last.round})" if last else "none"
        evaluated = next((e for e in reversed(self.rounds) if e.eval_loss is not None), None)
        eval_loss = (f", last validation loss: {evaluated.eval_loss:.4f} (round {evaluated.round})"
                     if evaluated else "")
        return "\n".join([
            f"Run summary ({self.run_dir})",
            f"  rounds: {totals['rounds']}, last train loss: {loss}{eval_loss}",
            f"  communication: {totals['comm_total_mb']:.2f} MB of {COMMUNICATION_BUDGET_MB:,.0f} MB "
            f"({totals['comm_budget_used_percent']:.4f}%)",
            f"  peak memory: server {totals['server_peak_rss_mb']:.0f} MB RSS, clients "
            f"{totals['client_peak_rss_mb']:.0f} MB RSS, {totals['client_cuda_peak_mb']:.0f} MB CUDA",
            f"  base model loads: {totals['base_model_loads']} in "
            f"{totals['client_processes']} client process(es)",
        ])

    @classmethod
    def load(cls, run_dir: Path, up_to_round: int) -> RunRecord:
        """The record of a run being resumed, rounds after `up_to_round` dropped."""
        record = cls(run_dir)
        path = run_dir / METRICS_FILE
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            record.rounds = [RoundRecord(**entry) for entry in data["rounds"]
                             if entry["round"] <= up_to_round]
        return record
