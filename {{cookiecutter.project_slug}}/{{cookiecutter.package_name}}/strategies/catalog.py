"""The strategy each `strategy.name` runs: Flower's own, plus FlexLoRA, each with `Recorded`."""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import ArrayRecord, Message, MetricRecord
from flwr.serverapp.strategy import FedAdam, FedAvg, FedAvgM, FedProx, FedYogi

from ..communication import CommunicationTracker, to_arrays, to_state
from ..run_record import RunRecord
from ..settings import RunSettings
from .flexlora import flexlora_aggregate
from .recorded import Recorded


class FlexLoRA(FedAvg):
    """FedAvg whose aggregate is the example-weighted mean of the clients' LoRA products B_k A_k,
    re-factorised at the adapter's rank (`flexlora_aggregate`); other entries are averaged."""

    def __init__(self, *, rank: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rank = rank

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        valid, _ = self._check_and_log_replies(replies, is_train=True)
        if not valid:
            return None, None
        contents = [msg.content for msg in valid]
        states = [to_state(content[self.arrayrecord_key]) for content in contents]
        weights = [float(content["metrics"][self.weighted_by_key]) for content in contents]
        arrays = to_arrays(flexlora_aggregate(states, weights, self.rank), "float32")
        return arrays, self.train_metrics_aggr_fn(contents, self.weighted_by_key)


class FlowerTuneFedAvg(Recorded, FedAvg):
    """FedAvg."""


class FlowerTuneFedProx(Recorded, FedProx):
    """FedProx: sends `proximal-mu`; the clients add the proximal term to their loss."""


class FlowerTuneFedAvgM(Recorded, FedAvgM):
    """FedAvgM: server learning rate and momentum; the momentum is checkpointed."""

    server_state_names = ("momentum_vector",)
    list_state_names = ("momentum_vector",)


class FlowerTuneFedAdam(Recorded, FedAdam):
    """FedAdam; its moments m_t and v_t are checkpointed."""

    server_state_names = ("m_t", "v_t")


class FlowerTuneFedYogi(Recorded, FedYogi):
    """FedYogi; its moments m_t and v_t are checkpointed."""

    server_state_names = ("m_t", "v_t")


class FlowerTuneFlexLoRA(Recorded, FlexLoRA):
    """FlexLoRA."""


STRATEGIES: dict[str, type[Recorded]] = {
    "fedavg": FlowerTuneFedAvg,
    "fedprox": FlowerTuneFedProx,
    "fedavgm": FlowerTuneFedAvgM,
    "fedadam": FlowerTuneFedAdam,
    "fedyogi": FlowerTuneFedYogi,
    "flexlora": FlowerTuneFlexLoRA,
}


def strategy_parameters(settings: RunSettings) -> dict:
    """The keyword arguments of the chosen strategy's own parameters."""
    chosen = settings.strategy
    adaptive = {
        "eta": chosen.server_learning_rate, "eta_l": settings.learning_rate_max,
        "beta_1": chosen.beta_1, "beta_2": chosen.beta_2, "tau": chosen.tau,
    }
    return {
        "fedavg": {},
        "fedprox": {"proximal_mu": chosen.proximal_mu},
        "fedavgm": {"server_learning_rate": chosen.server_learning_rate,
                    "server_momentum": chosen.server_momentum},
        "fedadam": adaptive,
        "fedyogi": adaptive,
        "flexlora": {"rank": settings.lora.r},
    }[chosen.name]


def build_strategy(
    settings: RunSettings, record: RunRecord, communication: CommunicationTracker, round_offset: int
) -> Recorded:
    """The strategy `strategy.name` names, with its parameters from the run config."""
    return STRATEGIES[settings.strategy.name](
        settings, record, communication, round_offset, **strategy_parameters(settings)
    )
