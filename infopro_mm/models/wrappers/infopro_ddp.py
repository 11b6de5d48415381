"""Data-parallel training of InfoPro models, reduced per local module."""
from typing import Dict, List, Union

import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from infopro_mm.registry import MODEL_WRAPPERS
from .bucket_reducer import BucketReducer

__all__ = ['InfoProDDP']


@MODEL_WRAPPERS.register_module()
class InfoProDDP(nn.Module):
    """Distributed data parallel for :class:`~infopro_mm.models.InfoPro`.

    ``MMDistributedDataParallel`` cannot run InfoPro's local backwards: its
    ``train_step`` never calls the model's, and a backward run inside a DDP
    forward is never all-reduced. This wrapper runs ``InfoPro.train_step``
    itself and averages every parameter's gradient across ranks exactly once
    per optimizer step:

    - gradients are averaged by a :class:`BucketReducer`: buckets of
      ``bucket_cap_mb`` within each local module, each all-reduced
      asynchronously as soon as its gradients are final. With
      ``overlap=True`` (default) that happens during the backward that
      produces them, so module k's communication overlaps with its own
      remaining backward and with the later modules' forward and backward,
      and the last module's with its own task backward (as
      ``DistributedDataParallel`` overlaps the end-to-end backward);
    - every reduction is waited for at the start of the optimizer wrapper's
      ``step`` (before AMP unscaling, inf checks and clipping, so all ranks
      take the same decision).

    With ``accumulative_counts > 1`` gradients accumulate locally and are
    reduced only in the iteration that steps. Ranks start from rank 0's
    parameters and buffers. SyncBN layers inside local modules synchronise
    in their own forward (every rank runs the same modules in the same
    order); ``broadcast_buffers=True`` additionally copies rank 0's buffers
    (e.g. plain BN statistics) to every rank before each iteration.

    Set it with ``model_wrapper_cfg=dict(type='infopro_mm.InfoProDDP')``.

    Args:
        module (nn.Module): The InfoPro model.
        overlap (bool): Start each bucket's all-reduce as soon as its
            gradients are final. With False, everything is reduced right
            before the optimizer step. Defaults to True.
        bucket_cap_mb (float): Bucket size limit. Defaults to 25.
        broadcast_buffers (bool): Broadcast rank 0's buffers before every
            iteration. Defaults to False (as mmengine's default DDP).
        process_group (optional): The group to reduce over. Defaults to the
            default group.
    """

    def __init__(self,
                 module: nn.Module,
                 overlap: bool = True,
                 bucket_cap_mb: float = 25.,
                 broadcast_buffers: bool = False,
                 process_group=None) -> None:
        super().__init__()
        from infopro_mm.models import InfoPro
        if not isinstance(module, InfoPro):
            raise TypeError('InfoProDDP wraps infopro_mm.InfoPro models, got '
                            f'{type(module).__name__}; use '
                            'MMDistributedDataParallel for other models')
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError('InfoProDDP needs an initialised process group '
                               '(launch with tools/dist_train.sh)')
        self.module = module
        self.overlap = overlap
        self.broadcast_buffers = broadcast_buffers
        self.process_group = process_group
        self.reducer = BucketReducer(
            module.module_parameters(), bucket_cap_mb, process_group)
        self._broadcast(list(module.parameters()) + list(module.buffers()))

    def _broadcast(self, tensors: List[Tensor]) -> None:
        src = dist.get_global_rank(self.process_group, 0) \
            if self.process_group is not None else 0
        with torch.no_grad():
            for tensor in tensors:
                dist.broadcast(tensor, src, group=self.process_group)

    # ------------------------------------------------------------------
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: OptimWrapper) -> Dict[str, Tensor]:
        """``InfoPro.train_step`` with gradients averaged across ranks.

        Args:
            data (dict | tuple | list): This rank's batch.
            optim_wrapper (OptimWrapper): An ``InfoProOptimWrapper``.

        Returns:
            dict[str, Tensor]: The model's log variables.
        """
        if not hasattr(optim_wrapper, 'before_step_hooks'):
            raise TypeError('InfoProDDP needs an infopro_mm optimizer '
                            f'wrapper, got {type(optim_wrapper).__name__}')
        if self.broadcast_buffers:
            self._broadcast(list(self.module.buffers()))
        overlap = self.overlap and optim_wrapper.should_sync()
        self.reducer.arm(overlap)
        optim_wrapper.before_step_hooks.append(self.reducer.finish)
        try:
            return self.module.train_step(
                data,
                optim_wrapper,
                on_local_backward=self.reducer.flush if overlap else None)
        finally:
            optim_wrapper.before_step_hooks.remove(self.reducer.finish)

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``val_step`` (no communication)."""
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``test_step`` (no communication)."""
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        """The model's own forward (no communication)."""
        return self.module(*args, **kwargs)
