"""Training-loop hook of InfoPro: local-loss logging and weight schedules."""
from typing import Dict, Optional, Sequence, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from infopro_mm.registry import HOOKS

__all__ = ['InfoProHook', 'piecewise_linear']


def piecewise_linear(x: float, points: Sequence[Tuple[float, float]]) -> float:
    """Linear interpolation through ``points`` (constant outside them).

    Args:
        x (float): Where to evaluate.
        points (Sequence[tuple[float, float]]): ``(x, y)`` pairs, sorted by x.
    """
    if x <= points[0][0]:
        return float(points[0][1])
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x <= x1:
            return float(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return float(points[-1][1])


@HOOKS.register_module()
class InfoProHook(Hook):
    """Logs InfoPro's local losses and schedules their weights.

    After every training iteration it puts the detached local losses of the
    :class:`~infopro_mm.models.InfoPro` model (``local1.loss_recon``,
    ``local1.loss_task``, ...) into the message hub, so the logger prints them
    beside the task loss; they are never part of the logged total ``loss``.
    On CUDA it also logs each module's peak memory of the iteration
    (``local{k}.memory``, MiB). Note that resetting the peak per module makes
    mmengine's own ``memory`` field the last module's peak.

    ``weight_schedule`` multiplies the configured loss weights over training,
    e.g. ``dict(recon=[(0, 1.0), (40000, 0.0)])`` anneals lambda1 linearly to
    zero over 40k iterations (the factor is constant outside the points).

    Args:
        log_cuda_memory (bool): Log per-module peak memory on CUDA.
            Defaults to True.
        weight_schedule (dict, optional): Head name -> ``[(iter, factor),
            ...]``. Defaults to None.
    """

    priority = 'NORMAL'

    def __init__(self,
                 log_cuda_memory: bool = True,
                 weight_schedule: Optional[Dict[str, Sequence[Tuple[
                     int, float]]]] = None) -> None:
        self.log_cuda_memory = log_cuda_memory
        self.weight_schedule = {
            name: sorted((int(i), float(f)) for i, f in points)
            for name, points in (weight_schedule or {}).items()
        }
        for name, points in self.weight_schedule.items():
            if not points:
                raise ValueError(f'weight_schedule[{name!r}] is empty')

    @staticmethod
    def _infopro(runner):
        from infopro_mm.models import InfoPro
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, InfoPro):
            raise TypeError('InfoProHook needs an infopro_mm.InfoPro model, '
                            f'got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._infopro(runner)
        unknown = set(self.weight_schedule) - set(model.weight_factors)
        if unknown:
            raise ValueError(f'weight_schedule names {sorted(unknown)} match '
                             'no local head of the model (heads: '
                             f'{sorted(model.weight_factors)})')
        model.track_cuda_memory = (
            self.log_cuda_memory and torch.cuda.is_available())

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        if not self.weight_schedule:
            return
        model = self._infopro(runner)
        for name, points in self.weight_schedule.items():
            factor = piecewise_linear(runner.iter, points)
            model.weight_factors[name] = factor
            runner.message_hub.update_scalar(f'train/factor_{name}', factor)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        for key, value in self._infopro(runner).local_log_vars.items():
            runner.message_hub.update_scalar(f'train/{key}', float(value))
