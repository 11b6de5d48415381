"""Wall time of a callable: warm-up runs, then the median of repeats."""
import statistics
import time
from typing import Callable, List, Optional

import torch

__all__ = ['median_seconds', 'repeat_seconds']


def repeat_seconds(fn: Callable[[], None],
                   warmup: int = 2,
                   repeats: int = 5,
                   device: Optional[torch.device] = None,
                   clock: Callable[[], float] = time.perf_counter
                   ) -> List[float]:
    """Wall time of every timed call of ``fn``, after ``warmup`` calls.

    Args:
        fn (callable): What is timed (called without arguments).
        warmup (int): Untimed calls first (allocator and kernel caches,
            cuDNN autotuning). Defaults to 2.
        repeats (int): Timed calls. Defaults to 5.
        device (torch.device, optional): A CUDA device is synchronised
            before and after every timed call. Defaults to None (CPU).
        clock (callable): Seconds now. Defaults to wall time
            (``time.perf_counter``); ``time.process_time`` (CPU time of the
            process) ignores other jobs on a shared machine, but sums the
            threads: a wall-time proxy with one intra-op thread only.

    Returns:
        list[float]: Seconds of each timed call.
    """
    if repeats < 1:
        raise ValueError(f'repeats must be at least 1, got {repeats}')
    cuda = device is not None and torch.device(device).type == 'cuda'
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize(device)
        start = clock()
        fn()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(clock() - start)
    return times


def median_seconds(fn: Callable[[], None],
                   warmup: int = 2,
                   repeats: int = 5,
                   device: Optional[torch.device] = None,
                   clock: Callable[[], float] = time.perf_counter) -> float:
    """Median of :func:`repeat_seconds` (same arguments)."""
    return statistics.median(
        repeat_seconds(fn, warmup, repeats, device, clock))
