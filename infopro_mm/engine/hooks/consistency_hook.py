"""Stops distributed training when ranks stop holding the same model."""
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.dist import is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from infopro_mm.registry import HOOKS

__all__ = ['InfoProConsistencyHook']


@HOOKS.register_module()
class InfoProConsistencyHook(Hook):
    """Compares parameter checksums across ranks every ``interval`` iters.

    Each parameter's float64 sum is compared between the ranks (one
    all-reduce of a vector with one entry per parameter, for MIN and MAX);
    on any difference training stops with an error naming the first
    parameters that diverged. Off by default: add it to ``custom_hooks`` to
    guard a distributed run (the tests always do).

    Args:
        interval (int): Check every this many training iterations.
            Defaults to 50.
        atol (float): Allowed checksum difference. Defaults to 0 (ranks
            running ``InfoProDDP`` hold bitwise identical parameters).
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50, atol: float = 0.0) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval = interval
        self.atol = atol

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if not is_distributed() or not self.every_n_train_iters(
                runner, self.interval):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        names, params = zip(*model.named_parameters())
        sums = torch.stack([p.detach().double().sum() for p in params])
        low, high = sums.clone(), sums.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        diverged = ((high - low).abs() > self.atol).nonzero().flatten()
        if len(diverged):
            listed = ', '.join(names[i] for i in diverged[:5].tolist())
            raise RuntimeError(
                f'parameters differ across ranks after iteration '
                f'{runner.iter + 1}: {len(diverged)} tensors, first {listed}. '
                'Gradients are not synchronised: InfoPro models need '
                "model_wrapper_cfg=dict(type='infopro_mm.InfoProDDP')")
