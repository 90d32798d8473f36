"""The order of examples: new every round with train.dynamic-data-seed, fixed without, a pure
function of (seed, round, partition) so that a resumed run trains as an uninterrupted one."""

from __future__ import annotations

import numpy as np

from .run_config import rendered_run_config


def order_settings(rendered_package, **overrides):
    return rendered_package("settings").read_settings(rendered_run_config(rendered_package, **overrides))


def first_batches(rendered_package, settings, rounds, partition_id=0, n=20, batch=2):
    client = rendered_package("client_app")
    return [client.training_rows(settings, r, partition_id, n)[:batch].tolist() for r in rounds]


def test_the_order_is_a_pure_function_of_seed_round_and_partition(rendered_package):
    order = rendered_package("dataset").round_example_order
    assert np.array_equal(order(42, 3, 1, 50), order(42, 3, 1, 50))
    assert sorted(order(42, 3, 1, 50)) == list(range(50))
    variants = [order(42, 3, 1, 50), order(42, 4, 1, 50), order(42, 3, 0, 50), order(7, 3, 1, 50)]
    assert len({tuple(v) for v in variants}) == 4


def test_first_batch_changes_every_round_with_the_dynamic_seed(rendered_package):
    settings = order_settings(rendered_package, **{"train.dynamic-data-seed": True})
    batches = first_batches(rendered_package, settings, range(1, 6))
    assert all(a != b for a, b in zip(batches, batches[1:], strict=False)), batches


def test_first_batch_is_the_same_every_round_without_it(rendered_package):
    settings = order_settings(rendered_package, **{"train.dynamic-data-seed": False})
    batches = first_batches(rendered_package, settings, range(1, 6))
    assert all(batch == batches[0] for batch in batches), batches


def test_a_resumed_run_trains_on_what_an_uninterrupted_one_would(rendered_package):
    settings = order_settings(rendered_package)
    uninterrupted = first_batches(rendered_package, settings, range(1, 7), partition_id=1)
    # a run stopped after round 3: a new process computes rounds 4-6 from the same values
    resumed = first_batches(rendered_package, order_settings(rendered_package), range(4, 7), partition_id=1)
    assert resumed == uninterrupted[3:]


def test_validation_rows_are_held_out_only_when_the_run_evaluates(rendered_package):
    client, dataset = rendered_package("client_app"), rendered_package("dataset")
    plain = order_settings(rendered_package)
    assert sorted(client.training_rows(plain, 1, 0, 40)) == list(range(40))
    evaluating = order_settings(rendered_package, **{"strategy.fraction-evaluate": 1.0,
                                                     "train.validation-fraction": 0.1})
    train, validation = dataset.validation_rows(evaluating.seed, 0, 40, 0.1)
    assert len(validation) == 4 and not set(train) & set(validation)
    for server_round in (1, 2):
        assert sorted(client.training_rows(evaluating, server_round, 0, 40)) == train.tolist()
