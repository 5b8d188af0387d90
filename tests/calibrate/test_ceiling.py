"""The ceiling of the embedding router alone (scripts/embedding_ceiling.py): its arithmetic on
small curves whose answer is known, and the figure docs/smart-routing.md quotes for the file."""

from __future__ import annotations

import numpy as np
import pytest

from modelroute.calibrate import data as datamod
from scripts.embedding_ceiling import Tasks, auc, best_prefixes, cost_for, frontier, ranked
from tests.calibrate.support import DATA


def test_frontier_buys_the_cheapest_quality_first_and_the_last_step_in_part() -> None:
    # task a: 1 quality for 1 cost (price 1); task b: 3 quality for 1 cost (price 3), then 1 for 4 more
    a = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    b = (np.array([0.0, 1.0, 5.0]), np.array([0.0, 3.0, 4.0]))
    assert frontier([a, b], 1.0) == pytest.approx(3.0)  # b's first step only
    assert frontier([a, b], 1.5) == pytest.approx(3.5)  # then half of a's
    assert frontier([a, b], 4.0) == pytest.approx(4.5)  # all of a, then half of b's second step (price 1/4)
    assert cost_for(frontier, [a, b], 3.5, 10.0) == pytest.approx(1.5, abs=1e-6)
    assert cost_for(frontier, [a, b], 9.0, 10.0) == float("inf")


def test_a_dominated_model_is_never_bought() -> None:
    task = (np.array([0.0, 2.0, 1.0]), np.array([0.0, 1.0, 2.0]))  # the second point costs more for less
    assert frontier([task], 2.0) == pytest.approx(2.0)


def test_prefixes_follow_the_ranking_without_a_hull() -> None:
    cheap_k, cheap_q = np.zeros(4), np.array([1.0, 1.0, 0.0, 0.0])
    top_k, top_q = np.ones(4), np.array([1.0, 1.0, 1.0, 1.0])
    good = ranked(np.array([2, 3, 0, 1]), cheap_k, cheap_q, top_k, top_q)  # the two that gain go first
    bad = ranked(np.array([0, 1, 2, 3]), cheap_k, cheap_q, top_k, top_q)
    assert best_prefixes([good], 2.0) == 4.0
    assert best_prefixes([bad], 2.0) == 2.0  # spends its budget on prompts the cheap model had right
    assert best_prefixes([bad], 3.0) == 3.0


def test_auc_counts_ties_as_half() -> None:
    positive = np.array([True, False, True, False])
    assert auc(np.array([2.0, 1.0, 3.0, 0.0]), positive) == 1.0
    assert auc(np.array([0.0, 1.0, 0.0, 3.0]), positive) == 0.0
    assert auc(np.ones(4), positive) == 0.5


@pytest.mark.skipif(not DATA.exists(), reason="shared/data is not beside the checkout")
def test_knowing_the_task_alone_stays_below_the_bar() -> None:
    """Any mix of the 11 models per task, chosen in-sample with exact labels: the most an embedding
    router that only tells the tasks apart can do. 96.5% at 35%; 97% costs 42.5% of gpt-4's cost."""
    tasks = Tasks(datamod.load(DATA))
    quality, cost = tasks.figures(frontier, tasks.models())
    assert 0.960 < quality < 0.97
    assert 0.40 < cost < 0.45
    assert [tasks.ds.models[m] for m in tasks.cheap.values()] == [
        "zero-one-ai/Yi-34B-Chat", "gpt-3.5-turbo-1106", "zero-one-ai/Yi-34B-Chat"]
