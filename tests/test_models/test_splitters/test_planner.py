"""The balanced (InfoPro*) planner: exactness and determinism."""
import itertools
import random

import pytest

from infopro_mm.models import (MemoryBudgetError, module_costs,
                               plan_balanced_cuts, plan_within_budget)


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


@pytest.mark.parametrize('seed', range(10))
def test_planner_is_exact_on_float_times(seed):
    # times (seconds) are floats, and a layer that starts a module is
    # cheaper (no input gradient): negative input costs
    rng = random.Random(100 + seed)
    n = rng.randint(3, 9)
    layer = [rng.uniform(0.01, 0.1) for _ in range(n)]
    inputs = [0.] + [-rng.uniform(0, 0.01) for _ in range(n - 1)]
    heads = [rng.uniform(0, 0.05) for _ in range(n)]
    tail = rng.uniform(0, 0.1)
    k = rng.randint(1, n)
    cuts, costs = plan_balanced_cuts(layer, inputs, heads, tail, k)
    assert (max(costs), sum(costs), cuts) == brute_force(
        layer, inputs, heads, tail, k)


def test_time_balanced_cuts_by_hand():
    # ms per layer; starting a module saves 1 ms (no input gradient)
    # except at the stem; heads 2 ms after any layer; tail 3 ms
    layer = [10., 4., 4., 4., 4., 10.]
    inputs = [0., -1., -1., -1., -1., -1.]
    heads = [2.] * 6
    # K=2, cut after layer 2: 10+4+4+2 = 20 and -1+4+4+10+3 = 20 ms; after
    # layer 1: 16 / 24, after layer 3: 24 / 16
    cuts, costs = plan_balanced_cuts(layer, inputs, heads, 3., 2)
    assert cuts == [2] and costs == [20., 20.]
    # K=3: the slowest stage is at best 16 ms, at cuts [0, 3] (12 / 13 / 16)
    # and [1, 3] (16 / 9 / 16); equal totals (41), the earlier cuts win
    cuts, costs = plan_balanced_cuts(layer, inputs, heads, 3., 3)
    assert cuts == [0, 3] and costs == [12., 13., 16.]
    assert (max(costs), sum(costs), cuts) == brute_force(
        layer, inputs, heads, 3., 3)


def test_planner_rejects_impossible_k():
    with pytest.raises(ValueError, match='cannot split 3 basic layers'):
        plan_balanced_cuts([1, 1, 1], [0, 0, 0], [0, 0, 0], 0, 4)


# four equal layers: K modules hold 400 / K (+ 10 per local head); the
# fixed costs are 50 plus 5 per set of local heads
BUDGET_CASE = dict(
    layer_bytes=[100] * 4,
    input_bytes=[0] * 4,
    head_bytes=[10] * 4,
    tail_bytes=0,
    fixed_bytes=50,
    head_fixed_bytes=[5] * 4)


def test_budget_picks_the_smallest_k_that_fits():
    # peaks: K=1 450, K=2 265 (210 + 55), K=3 260 (200 + 60),
    # K=4 175 (110 + 65)
    cuts, modules, peak = plan_within_budget(budget=265, **BUDGET_CASE)
    assert cuts == [1] and modules == [210, 200] and peak == 265
    cuts, modules, peak = plan_within_budget(budget=264, **BUDGET_CASE)
    assert cuts == [0, 1] and modules == [110, 110, 200] and peak == 260
    cuts, _, peak = plan_within_budget(budget=259, **BUDGET_CASE)
    assert len(cuts) == 3 and peak == 175
    cuts, _, peak = plan_within_budget(budget=10**9, **BUDGET_CASE)
    assert cuts == [] and peak == 450


def test_budget_too_small_names_the_smallest_achievable_peak():
    with pytest.raises(MemoryBudgetError,
                       match=r'smallest achievable peak is 175 B \(175 '
                       r'bytes, at K=4') as info:
        plan_within_budget(budget=174, **BUDGET_CASE)
    assert info.value.best_peak == 175
    assert info.value.best_num_modules == 4
    with pytest.raises(MemoryBudgetError, match='260 bytes, at K=3'):
        plan_within_budget(budget=174, max_modules=3, **BUDGET_CASE)
