"""The balanced (InfoPro*) planner: exactness and determinism."""
import itertools
import random

import pytest

from infopro_mm.models import module_costs, plan_balanced_cuts


def brute_force(layer, inputs, heads, tail, k):
    n = len(layer)
    best = None
    for cuts in itertools.combinations(range(n - 1), k - 1):
        costs = module_costs(list(cuts), layer, inputs, heads, tail)
        key = (max(costs), sum(costs), list(cuts))
        best = key if best is None or key < best else best
    return best


@pytest.mark.parametrize('seed', range(20))
def test_planner_is_exact_and_deterministic(seed):
    rng = random.Random(seed)
    n = rng.randint(3, 9)
    layer = [rng.randint(1, 100) for _ in range(n)]
    inputs = [0] + [rng.randint(0, 10) for _ in range(n - 1)]
    heads = [rng.randint(0, 50) for _ in range(n)]
    tail = rng.randint(0, 100)
    k = rng.randint(1, n)
    cuts, costs = plan_balanced_cuts(layer, inputs, heads, tail, k)
    assert len(cuts) == k - 1 and len(costs) == k
    expected = brute_force(layer, inputs, heads, tail, k)
    assert (max(costs), sum(costs), cuts) == expected
    assert plan_balanced_cuts(layer, inputs, heads, tail, k) == (cuts, costs)


def test_planner_counts_heads_and_tail():
    layer = [10] * 4
    # a heavy tail pushes the cut late; heavy heads on late layers push it
    # back early
    assert plan_balanced_cuts(layer, [0] * 4, [0] * 4, 30, 2)[0] == [2]
    assert plan_balanced_cuts(layer, [0] * 4, [0, 0, 100, 100], 30, 2)[0] \
        == [1]


def test_planner_rejects_impossible_k():
    with pytest.raises(ValueError, match='cannot split 3 basic layers'):
        plan_balanced_cuts([1, 1, 1], [0, 0, 0], [0, 0, 0], 0, 4)
