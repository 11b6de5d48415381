"""Data-parallel training of InfoPro models: one all-reduce per module."""
from typing import Dict, List, Optional, Union

import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper
from torch import Tensor, nn

from infopro_mm.registry import MODEL_WRAPPERS

__all__ = ['InfoProDDP']


@MODEL_WRAPPERS.register_module()
class InfoProDDP(nn.Module):
    """Distributed data parallel for :class:`~infopro_mm.models.InfoPro`.

    ``MMDistributedDataParallel`` cannot run InfoPro's local backwards: its
    ``train_step`` never calls the model's, and a backward run inside a DDP
    forward is never all-reduced. This wrapper runs ``InfoPro.train_step``
    itself and averages every parameter's gradient across ranks exactly once
    per optimizer step:

    - with ``overlap=True`` (default), the gradients of local module k are
      flattened and all-reduced asynchronously right after its local
      backward, overlapping with the later modules' compute; the last
      module's gradients are reduced once its task backward is done;
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
        overlap (bool): Start each module's all-reduce right after its local
            backward. Defaults to True.
        broadcast_buffers (bool): Broadcast rank 0's buffers before every
            iteration. Defaults to False (as mmengine's default DDP).
        process_group (optional): The group to reduce over. Defaults to the
            default group.
    """

    def __init__(self,
                 module: nn.Module,
                 overlap: bool = True,
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
        self.world_size = dist.get_world_size(process_group)
        self._groups = module.module_parameters()
        self._pending: List = []
        self._launched: set = set()
        self._broadcast(list(module.parameters()) + list(module.buffers()))

    # ------------------------------------------------------------------
    def _broadcast(self, tensors: List[Tensor]) -> None:
        src = dist.get_global_rank(self.process_group, 0) \
            if self.process_group is not None else 0
        with torch.no_grad():
            for tensor in tensors:
                dist.broadcast(tensor, src, group=self.process_group)

    def _launch(self, module: int) -> None:
        """Start the asynchronous all-reduce of one module's gradients."""
        grads = [p.grad for p in self._groups[module] if p.grad is not None]
        self._launched.add(module)
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        work = dist.all_reduce(
            flat, group=self.process_group, async_op=True)
        self._pending.append((work, flat, grads))

    def _finish(self) -> None:
        """Reduce what is left, wait for everything, write averages back."""
        for module in range(len(self._groups)):
            if module not in self._launched:
                self._launch(module)
        for work, flat, grads in self._pending:
            work.wait()
            flat.div_(self.world_size)
            offset = 0
            for grad in grads:
                grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
                offset += grad.numel()
        self._pending = []

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
        self._pending, self._launched = [], set()
        steps = optim_wrapper.should_sync()
        on_local_backward = self._launch if (self.overlap and steps) else None
        optim_wrapper.before_step_hooks.append(self._finish)
        try:
            return self.module.train_step(
                data, optim_wrapper, on_local_backward=on_local_backward)
        finally:
            optim_wrapper.before_step_hooks.remove(self._finish)

    def val_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``val_step`` (no communication)."""
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> list:
        """The model's own ``test_step`` (no communication)."""
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        """The model's own forward (no communication)."""
        return self.module(*args, **kwargs)
