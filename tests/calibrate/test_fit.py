"""The calibration's pieces on small data: agreement-cascade outcomes from recorded answers, the
hull of a region's plans, the budget allocation against a brute-force search, the cells of
regions served by answer, and the policy written for them."""

from __future__ import annotations

import numpy as np
import pytest

from modelroute.calibrate.data import Dataset
from modelroute.calibrate.cells import Conditioning, Layout, frequent_answers, key_ids, layout, plain
from modelroute.calibrate.fit import Mix, allocate, hull, label_ids, served
from modelroute.calibrate.plans import ANSWER_CHECKS, cascade, checked, escalation, outcomes, single

MODELS = ("first", "second", "third", "top")


def dataset() -> Dataset:
    """Five prompts. first answers A on 0-2; second agrees on 0-1; third on 0; 3 and 4 have no answer."""
    answers = [["A", "a.", "A", "B"], ["A", "A", "C", "A"], ["A", "B", "A", "A"], ["", "", "", "A"], ["...", "", "", "A"]]
    correct = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 1]], np.float64)
    cost = np.array([[1, 2, 4, 100]] * 5, np.float64)
    return Dataset([f"p{i}" for i in range(5)], ["t"] * 5, [f"prompt {i}" for i in range(5)], MODELS,
                   correct, cost, answers)


def test_a_two_checker_cascade_pays_a_checker_only_while_the_earlier_ones_agreed() -> None:
    correct, cost = outcomes(dataset(), cascade("first", ("second", "third"), "top"))
    # 0: all agree -> first's answer (1, cost 1+2+4); 1: third disagrees -> top (1+2+4+100);
    # 2: second disagrees -> third never asked (1+2+100); 3: an empty answer is rejected before
    # any checker is asked, as the sidecar's reviewer does (1+100); 4: "..." passes the empty check,
    # so the first checker is asked, but it normalises to nothing, which never agrees (1+2+100).
    assert correct.tolist() == [1, 1, 1, 1, 1]
    assert cost.tolist() == [7, 107, 103, 101, 103]
    one_correct, one_cost = outcomes(dataset(), cascade("first", ("second",), "top"))
    assert one_correct.tolist() == [1, 0, 1, 1, 1] and one_cost.tolist() == [3, 3, 103, 101, 103]


def test_by_answer_plans_accept_unless_empty_or_always_escalate() -> None:
    # Unchecked: first's answer stands unless empty (prompt 3); "..." is not empty, so it stands.
    correct, cost = outcomes(dataset(), cascade("first", (), "top"))
    assert correct.tolist() == [1, 0, 1, 1, 0] and cost.tolist() == [1, 1, 1, 101, 1]
    correct, cost = outcomes(dataset(), escalation("first", "top"))
    assert correct.tolist() == [1] * 5 and cost.tolist() == [101] * 5


def test_an_answer_check_accepts_a_matching_answer_and_escalates_the_rest() -> None:
    answers = [["```python\ndef f(x):\n    return x\n```", "", "", "A"], ["def  g (y): pass", "", "", "A"],
               ["```cpp\nint f(int x) { return x; }\n```", "", "", "A"], ["", "", "", "A"]]
    data = Dataset([f"p{i}" for i in range(4)], ["t"] * 4, [f"prompt {i}" for i in range(4)], MODELS,
                   np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1]], np.float64),
                   np.array([[1, 2, 4, 100]] * 4, np.float64), answers)
    correct, cost = outcomes(data, checked("first", "python-function", "top"))
    assert correct.tolist() == [1, 0, 1, 1] and cost.tolist() == [1, 1, 101, 101]
    correct, cost = outcomes(data, checked("first", "code-block", "top"))
    assert correct.tolist() == [1, 1, 0, 1] and cost.tolist() == [1, 101, 1, 101]


def test_hull_keeps_the_plans_worth_buying_cheapest_first() -> None:
    cost = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 2.5])
    quality = np.array([10.0, 14.0, 15.0, 19.0, 20.0, 13.0])
    # 2 lies under the line from 1 to 3; 5 costs more than 1 for less quality.
    assert hull(cost, quality) == [0, 1, 3, 4]


def _brute(q: np.ndarray, k: np.ndarray, goal: float) -> float:
    """Least cost reaching ``goal`` over every region's pure plans and two-plan mixes (shares in
    steps of 1/100), for two regions."""
    options = []
    for r in range(len(q)):
        cq, ck = [], []
        for a in range(q.shape[1]):
            for b in range(q.shape[1]):
                for s in np.linspace(0, 1, 101):
                    cq.append((1 - s) * q[r, a] + s * q[r, b])
                    ck.append((1 - s) * k[r, a] + s * k[r, b])
        options.append((np.array(cq), np.array(ck)))
    total_q = options[0][0][:, None] + options[1][0][None, :]
    total_k = options[0][1][:, None] + options[1][1][None, :]
    return float(total_k[total_q >= goal - 1e-9].min())


@pytest.mark.parametrize("seed", range(20))
def test_allocation_reaches_the_goal_at_the_least_cost(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = rng.uniform(0, 50, (2, 4))
    k = rng.uniform(0, 10, (2, 4))
    goal = float(rng.uniform(q.min(1).sum(), q.max(1).sum()))
    mixes = allocate(q, k, goal)
    got_q = sum((1 - m.share) * q[r, m.low] + m.share * q[r, m.high] for r, m in enumerate(mixes))
    got_k = sum((1 - m.share) * k[r, m.low] + m.share * k[r, m.high] for r, m in enumerate(mixes))
    assert got_q >= goal - 1e-9
    assert got_k <= _brute(q, k, goal) + 1e-9
    assert sum(not m.pure for m in mixes) <= 1  # only the region bought last is split


def test_an_unreachable_goal_takes_every_region_to_its_best_plan() -> None:
    q = np.array([[1.0, 3.0, 2.0], [5.0, 4.0, 6.0]])
    k = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    assert allocate(q, k, 100.0) == (Mix(1, 1, 0.0), Mix(2, 2, 0.0))


def test_a_mixed_region_is_served_half_and_half_in_expectation() -> None:
    mixes = (Mix(0, 0, 0.0), Mix(0, 1, 0.25))
    ids = label_ids(plain(2), mixes, plans=2)
    assert ids.tolist() == [0, 3]
    values = np.array([[1.0, 5.0], [1.0, 5.0]])
    assert served(plain(2), mixes, 2, np.array([0, 3]), np.zeros(2, np.int64), values).tolist() == [1.0, 2.0]


def test_keys_and_the_cells_of_regions_served_by_answer() -> None:
    answers = ["a"] * 30 + ["b"] * 25 + ["x"] * 5 + ["def f(): ..."] * 1 + [""] * 40
    keys = frequent_answers(answers)
    assert keys == ("a", "b")  # 20 or more each; "" never a key
    key = key_ids(answers, keys)
    assert key[:1].tolist() == [0] and key[30] == 1 and set(key[55:].tolist()) == {2}
    # Region 0 holds the keyed prompts (55 of 60), region 1 the rest: only region 0 is by answer.
    assign = np.array([0] * 60 + [1] * 41, np.int64)
    cond = Conditioning("first", keys, key, np.array([False, True, True]))
    lay = layout(assign, 2, cond, key)
    assert lay.conditional == (True, False) and lay.cells == 4 and lay.offsets.tolist() == [0, 3]
    assert lay.cell(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 0])).tolist() == [0, 1, 2, 3]
    assert lay.allowed(3, cond).tolist() == [[False, True, True]] * 3 + [[True, True, True]]
    # A region by answer has its own label; each prompt is served by its answer's cell.
    mixes = (Mix(1, 1, 0.0), Mix(2, 2, 0.0), Mix(1, 2, 0.5), Mix(0, 0, 0.0))
    assert label_ids(lay, mixes, plans=3).tolist() == [3, 0]
    values = np.array([[10.0, 20.0, 30.0]] * 4)
    got = served(lay, mixes, 3, np.array([3, 3, 3, 0]), np.array([0, 1, 2, 1]), values)
    assert got.tolist() == [20.0, 30.0, 25.0, 10.0]


def test_the_policy_maps_each_region_label_and_splits_the_mixed_one() -> None:
    from modelroute.calibrate.plans import single
    from modelroute.calibrate.policy import policy_document

    plans = [single("first"), single("top"), cascade("first", ("second",), "top"), cascade("first", ("second", "third"), "top")]
    mixes = (Mix(0, 0, 0.0), Mix(2, 2, 0.0), Mix(2, 3, 0.2647615))
    prices = {m: (1.0, 1.0) for m in MODELS}
    spec = policy_document("p", MODELS, prices, "top", "top", plans, plain(3), mixes, "http://x/v1", 16)["spec"]
    strategies = spec["strategies"]
    assert strategies["router"]["labels"] == {"cascade:first+second": {"strategy": "cascade-first-second"},
                                              "mix:2": {"strategy": "split-2"}}
    assert strategies["cascade-first-second-third"]["checks"] == {"agreement": {"models": ["second", "third"]}}
    targets = strategies["split-2"]["targets"]
    assert [t.get("strategy") for t in targets] == ["cascade-first-second", "cascade-first-second-third"]
    assert targets[0]["share"] + targets[1]["share"] == 1.0 and targets[1]["share"] == 0.264761


def test_the_policy_serves_a_region_by_answer_with_byanswer_rules() -> None:
    """Region 0 by answer (keys a, b, any other); its "b" cell is mixed, so it is two cascades
    that differ in that rule, split by the cell's share. Region 1 is a plain single model."""
    from modelroute.calibrate.policy import policy_document

    plans = [single("top"), cascade("first", (), "top"), cascade("first", ("second",), "top"), escalation("first", "top")]
    lay = Layout((True, False), ("a", "b"))
    mixes = (Mix(1, 1, 0.0), Mix(2, 3, 0.3), Mix(2, 2, 0.0), Mix(0, 0, 0.0))
    prices = {m: (1.0, 1.0) for m in MODELS}
    strategies = policy_document("p", MODELS, prices, "top", "top", plans, lay, mixes, "http://x/v1", 16)["spec"]["strategies"]
    assert strategies["router"]["labels"] == {"answers:0": {"strategy": "split-0"}}
    low, high = strategies["answers-0"], strategies["answers-0-b"]
    assert low["chain"] == high["chain"] == ["first", "top"]
    assert low["checks"]["byAnswer"] == [{"match": "^a$", "then": "accept"}, {"match": "^b$", "agreement": ["second"]},
                                         {"match": "", "agreement": ["second"]}]
    assert high["checks"]["byAnswer"][1] == {"match": "^b$", "then": "escalate"}
    assert high["checks"]["byAnswer"][::2] == low["checks"]["byAnswer"][::2]
    assert [(t["strategy"], t["share"]) for t in strategies["split-0"]["targets"]] == [("answers-0", 0.7), ("answers-0-b", 0.3)]


def test_the_policy_writes_an_answer_check_as_the_cascades_regex() -> None:
    from modelroute.calibrate.policy import policy_document

    plans = [single("top"), checked("first", "python-function", "top")]
    prices = {m: (1.0, 1.0) for m in MODELS}
    strategies = policy_document("p", MODELS, prices, "top", "top", plans, plain(1), (Mix(1, 1, 0.0),),
                                 "http://x/v1", 16)["spec"]["strategies"]
    assert strategies["router"]["labels"] == {"checked:first:python-function": {"strategy": "cascade-first-python-function"}}
    assert strategies["cascade-first-python-function"] == {
        "type": "cascade", "chain": ["first", "top"], "checks": {"regex": ANSWER_CHECKS["python-function"]}}
