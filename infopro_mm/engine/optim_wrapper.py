"""Optimizer wrappers that run one local backward per local module."""
from contextlib import contextmanager
from typing import Callable, List, Optional

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from infopro_mm.registry import OPTIM_WRAPPERS

__all__ = ['InfoProAmpOptimWrapper', 'InfoProOptimWrapper', 'LocalBackwardMixin']


class LocalBackwardMixin:
    """Adds :meth:`local_backward` to an mmengine optimizer wrapper.

    A local backward is scaled exactly like the iteration's final loss (the
    gradient-accumulation factor, and the AMP loss scale where there is one)
    but does not advance the wrapper's counters: those move once per
    iteration, when the task loss goes through ``update_params``, so
    ``accumulative_counts`` counts iterations and there is one optimizer step
    per (accumulated) iteration.

    Callables in :attr:`before_step_hooks` run at the start of every
    :meth:`step`, before AMP unscaling, inf checks and gradient clipping
    (``InfoProDDP`` finishes its gradient all-reduce there).

    :attr:`state_layout`, when set (``InfoProModuleParallel`` sets a
    :class:`~infopro_mm.models.StageOptimizerLayout`), maps
    :meth:`state_dict` to the single-model layout and
    :meth:`load_state_dict` back.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.before_step_hooks: List[Callable[[], None]] = []
        self.state_layout = None
        self._gathered: Optional[dict] = None

    @contextmanager
    def gathered_state(self):
        """Within this context :meth:`state_dict` returns the state taken on
        entry, so that one rank alone may ask for it (mmengine writes
        checkpoints on rank 0 only; gathering a module-parallel state is a
        collective that every rank enters here)."""
        self._gathered = self.state_dict()
        try:
            yield
        finally:
            self._gathered = None

    def state_dict(self) -> dict:
        """The wrapper's state dict, in the single-model layout."""
        if self._gathered is not None:
            return self._gathered
        state = super().state_dict()
        if self.state_layout is None:
            return state
        return self.state_layout.to_full(state)

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict of the single-model layout.

        Args:
            state_dict (dict): As :meth:`state_dict` returns it.
        """
        if self.state_layout is not None:
            state_dict = self.state_layout.from_full(state_dict)
        super().load_state_dict(state_dict)

    def local_backward(self, loss: torch.Tensor, **kwargs) -> None:
        """Back-propagate a local module's loss.

        Args:
            loss (Tensor): The weighted local loss of one module.
            **kwargs: Passed to ``Tensor.backward``.
        """
        count = self._inner_count
        self.backward(self.scale_loss(loss), **kwargs)
        self._inner_count = count

    def step(self, **kwargs) -> None:
        """Run :attr:`before_step_hooks`, then the wrapper's own step."""
        for hook in self.before_step_hooks:
            hook()
        super().step(**kwargs)


@OPTIM_WRAPPERS.register_module()
class InfoProOptimWrapper(LocalBackwardMixin, OptimWrapper):
    """:class:`mmengine.optim.OptimWrapper` with ``local_backward``."""


@OPTIM_WRAPPERS.register_module()
class InfoProAmpOptimWrapper(LocalBackwardMixin, AmpOptimWrapper):
    """:class:`mmengine.optim.AmpOptimWrapper` with ``local_backward``.

    The local losses are multiplied by the same dynamic loss scale as the
    task loss; the scaler unscales, checks for inf/NaN and steps once.
    """
