"""Balanced cuts: the split minimising the largest module's cost (memory
for InfoPro*, time for a pipeline), and the smallest K that fits a memory
budget."""
from typing import List, Optional, Sequence, Tuple, Union

from infopro_mm.utils import format_size

__all__ = [
    'MemoryBudgetError', 'module_costs', 'plan_balanced_cuts',
    'plan_within_budget'
]

#: Bytes (memory) or seconds (time).
Cost = Union[int, float]


class MemoryBudgetError(ValueError):
    """No K fits a memory budget.

    Args:
        message (str): What failed.
        best_peak (int): The smallest achievable peak (bytes).
        best_num_modules (int): The K that achieves it.
    """

    def __init__(self, message: str, best_peak: int,
                 best_num_modules: int) -> None:
        super().__init__(message)
        self.best_peak = best_peak
        self.best_num_modules = best_num_modules


def module_costs(cuts: Sequence[int], layer_costs: Sequence[Cost],
                 input_costs: Sequence[Cost], head_costs: Sequence[Cost],
                 tail_cost: Cost) -> List[Cost]:
    """Estimated cost of every module for given cuts.

    The cost is additive over basic layers: training memory (saved bytes,
    :class:`~infopro_mm.models.MemoryProfile`) or forward + backward time
    (seconds, :class:`~infopro_mm.models.TimeProfile`). A module spanning
    basic layers ``i..j`` costs its layers, the extra cost of layer ``i``
    when it starts a module (memory: its input, which the previous layer's
    bytes hold when the network runs end to end; time: the input gradient it
    no longer computes, a negative amount) and, if it is a local module, its
    auxiliary heads at layer ``j``; the last module costs the architecture's
    neck and task heads (``tail_cost``) instead.

    Args:
        cuts (Sequence[int]): Last basic layer of each local module.
        layer_costs (Sequence): Cost of each basic layer inside a module.
        input_costs (Sequence): Extra cost of each basic layer when it
            starts a module (0 for the first layer).
        head_costs (Sequence): Cost of the auxiliary heads on each basic
            layer's output.
        tail_cost: Cost of the neck and task heads.

    Returns:
        list: One estimate per module.
    """
    bounds = [-1, *cuts, len(layer_costs) - 1]
    return [
        _module_cost(bounds[k] + 1, bounds[k + 1], layer_costs, input_costs,
                     head_costs, tail_cost) for k in range(len(bounds) - 1)
    ]


def _module_cost(first: int, last: int, layer_costs: Sequence[Cost],
                 input_costs: Sequence[Cost], head_costs: Sequence[Cost],
                 tail_cost: Cost) -> Cost:
    """Estimate of the module spanning basic layers ``first..last``."""
    extra = tail_cost if last == len(layer_costs) - 1 else head_costs[last]
    return input_costs[first] + sum(layer_costs[first:last + 1]) + extra


def plan_balanced_cuts(layer_costs: Sequence[Cost],
                       input_costs: Sequence[Cost],
                       head_costs: Sequence[Cost], tail_cost: Cost,
                       num_modules: int) -> Tuple[List[int], List[Cost]]:
    """Cuts into ``num_modules`` modules minimising the largest module.

    Two exact dynamic programmes over the basic layers, for any additive
    cost (see :func:`module_costs`: memory for InfoPro*, time for a
    module-parallel pipeline, whose throughput the slowest stage bounds):
    the first finds the smallest achievable largest module; the second,
    among the splits that achieve it, the one with the smallest total (the
    auxiliary heads' share), then the earliest cuts. The result is
    deterministic.

    Args:
        layer_costs (Sequence): Cost of each basic layer inside a module.
        input_costs (Sequence): Extra cost of each basic layer when it
            starts a module.
        head_costs (Sequence): Cost of the auxiliary heads on each basic
            layer's output.
        tail_cost: Cost of the neck and task heads.
        num_modules (int): K.

    Returns:
        tuple[list[int], list]: The cuts and the per-module estimates.
    """
    n = len(layer_costs)
    if not 1 <= num_modules <= n:
        raise ValueError(f'cannot split {n} basic layers into '
                         f'{num_modules} modules')

    def cost(first: int, last: int) -> Cost:
        return _module_cost(first, last, layer_costs, input_costs, head_costs,
                            tail_cost)

    def solve(combine, start):
        # best[k][j]: optimum for layers 0..j split into k+1 modules
        best = [[None] * n for _ in range(num_modules)]
        for j in range(n):
            best[0][j] = start(cost(0, j))
        for k in range(1, num_modules):
            for j in range(k, n):
                options = [
                    combine(best[k - 1][i], cost(i + 1, j), i)
                    for i in range(k - 1, j) if best[k - 1][i] is not None
                ]
                options = [o for o in options if o is not None]
                best[k][j] = min(options) if options else None
        return best[num_modules - 1][n - 1]

    largest = solve(lambda prev, c, i: max(prev, c), lambda c: c)

    def within_largest(prev, c, i):
        return (prev[0] + c, prev[1] + (i, )) if c <= largest else None

    _, cuts = solve(within_largest, lambda c: (c, ()) if c <= largest else None)
    cuts = list(cuts)
    return cuts, module_costs(cuts, layer_costs, input_costs, head_costs,
                              tail_cost)


def plan_within_budget(layer_bytes: Sequence[int],
                       input_bytes: Sequence[int],
                       head_bytes: Sequence[int],
                       tail_bytes: int,
                       budget: int,
                       fixed_bytes: int = 0,
                       head_fixed_bytes: Sequence[int] = (),
                       max_modules: Optional[int] = None
                       ) -> Tuple[List[int], List[int], int]:
    """Balanced cuts of the smallest K whose peak fits ``budget``.

    For K = 1, 2, ... the cuts of :func:`plan_balanced_cuts`; the peak of a
    split is its largest module plus the fixed costs: ``fixed_bytes``
    (the architecture's weights, gradients and optimizer state) and, for
    every cut, the local heads' (``head_fixed_bytes`` of the cut's layer).

    Args:
        layer_bytes (Sequence[int]): Saved bytes of each basic layer.
        input_bytes (Sequence[int]): Bytes of each basic layer's input when
            it starts a module.
        head_bytes (Sequence[int]): Saved bytes of the auxiliary heads on
            each basic layer's output.
        tail_bytes (int): Saved bytes of the neck and task heads.
        budget (int): Bytes the peak may reach.
        fixed_bytes (int): Fixed bytes of the architecture. Defaults to 0.
        head_fixed_bytes (Sequence[int]): Fixed bytes of one set of local
            heads on each basic layer's output. Defaults to none.
        max_modules (int, optional): Largest K tried. Defaults to the
            number of basic layers.

    Returns:
        tuple[list[int], list[int], int]: The cuts, the per-module
        estimates (without fixed costs) and the peak.

    Raises:
        MemoryBudgetError: When no K fits; it names the smallest
            achievable peak.
    """
    n = len(layer_bytes)
    head_fixed = list(head_fixed_bytes) or [0] * n
    best = None
    for num_modules in range(1, min(max_modules or n, n) + 1):
        cuts, estimates = plan_balanced_cuts(layer_bytes, input_bytes,
                                             head_bytes, tail_bytes,
                                             num_modules)
        peak = max(estimates) + fixed_bytes + sum(head_fixed[c] for c in cuts)
        if peak <= budget:
            return cuts, estimates, peak
        if best is None or peak < best[0]:
            best = (peak, num_modules)
    peak, num_modules = best
    raise MemoryBudgetError(
        f'no split fits max_memory={format_size(budget)}: the smallest '
        f'achievable peak is {format_size(peak)} ({peak} bytes, at '
        f'K={num_modules}, of which {format_size(fixed_bytes)} are the '
        "architecture's weights, gradients and optimizer state); raise the "
        'budget or lower batch_size or input_size', peak, num_modules)
