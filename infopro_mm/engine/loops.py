"""Training loops of module-parallel and asynchronous InfoPro."""
import copy
from contextlib import contextmanager
from itertools import repeat
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from infopro_mm.registry import LOOPS

__all__ = ['AsynchronousTrainLoop', 'ModuleParallelTrainLoop']


@contextmanager
def _sampler_world(rank: int, world_size: int):
    """Let mmengine's samplers shard for ``world_size`` data-parallel
    replicas instead of every process (they read the default group's size
    in their constructor and take no argument for it)."""
    from mmengine.dataset import sampler
    original = sampler.get_dist_info
    sampler.get_dist_info = lambda: (rank, world_size)
    try:
        yield
    finally:
        sampler.get_dist_info = original


@LOOPS.register_module()
class ModuleParallelTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` for :class:`~infopro_mm.models.
    InfoProModuleParallel`.

    - Stage 0 of pipeline d reads shard d of the D pipelines' data (its
      sampler shards for D data-parallel replicas, not for all K x D
      processes: with D = 1, the order a single process reads); the other
      stages build the dataloader without workers and never read it: their
      ``train_step`` gets None and receives its batch from the previous
      stage.
    - Every module's weights are copied to all ranks before each validation
      (checkpoints: ``InfoProRunner.save_checkpoint``).
    - At the end, the pipeline is closed (every rank waits for the ranks
      before it to finish).

    Arguments are ``IterBasedTrainLoop``'s.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000,
                 dynamic_intervals: Optional[List[Tuple[int, int]]] = None
                 ) -> None:
        from infopro_mm.models import InfoProModuleParallel
        model = runner.model
        if not isinstance(model, InfoProModuleParallel):
            raise TypeError(
                'ModuleParallelTrainLoop trains an InfoProModuleParallel '
                f'model; the model is {type(model).__name__}. Set '
                "model_wrapper_cfg=dict(type='infopro_mm."
                "InfoProModuleParallel') (module-parallel training cannot "
                'be combined with InfoProDDP)')
        if model.stage > 0 and isinstance(dataloader, dict):
            dataloader = dict(
                dataloader, num_workers=0, persistent_workers=False)
        with _sampler_world(model.replica, model.num_replicas):
            super().__init__(runner, dataloader, max_iters, val_begin,
                             val_interval, dynamic_intervals)
        if model.stage > 0:
            self.dataloader_iterator = repeat(None)

    def run(self):
        model = self.runner.model
        val_loop = self.runner.val_loop
        if val_loop is not None:
            run_val = val_loop.run

            def synchronized_val():
                model.synchronize()
                return run_val()

            val_loop.run = synchronized_val
        result = super().run()
        model.close()
        return result


@LOOPS.register_module()
class AsynchronousTrainLoop(IterBasedTrainLoop):
    """Asynchronous InfoPro ("Asy-InfoPro", paper §4): one module at a time.

    Phase k = 0..K-1 trains local module k alone for ``max_iters``
    iterations (:meth:`~infopro_mm.models.InfoPro.set_active_module`): on
    the outputs of the fully trained, frozen modules before it (recomputed
    every iteration under ``torch.no_grad``, nothing cached), with its
    local loss, or the architecture's task loss in the last phase (the rest
    of the backbone, the neck and the task heads). The run has
    ``K * max_iters`` iterations; the phase is ``iter // max_iters``, so a
    resume continues mid-phase where it stopped.

    At the start of every phase after the first, the optimizer state
    (momentum) is cleared, the hyper-parameters the schedulers set go back
    to their initial values and the schedulers are rebuilt from their
    configs, so every module gets the whole schedule (an iteration-based
    scheduler without ``end`` ends with the phase). Validation before the
    last phase would measure an untrained task head, so it only runs in the
    last phase: from its iteration ``val_begin`` on at the iterations that
    are multiples of ``val_interval`` (counted over the whole run, as
    ``IterBasedTrainLoop`` counts them: the same as within the phase when
    ``val_interval`` divides ``max_iters``), and at the end.

    Args:
        runner (Runner): The runner; its model is an ``InfoPro`` (or an
            ``InfoProDDP`` of one).
        dataloader (DataLoader | dict): The training dataloader.
        max_iters (int): Iterations of every phase (of every module).
        val_begin (int): First iteration of the last phase that may
            validate. Defaults to 1.
        val_interval (int): Validation interval. Defaults to 1000.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 max_iters: int,
                 val_begin: int = 1,
                 val_interval: int = 1000) -> None:
        from infopro_mm.models import InfoPro, InfoProModuleParallel
        if isinstance(runner.model, InfoProModuleParallel):
            raise TypeError(
                'AsynchronousTrainLoop trains one local module at a time in '
                'every process; it cannot run an InfoProModuleParallel '
                'pipeline (remove model_wrapper_cfg, or use InfoProDDP for '
                'data parallelism)')
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, InfoPro):
            raise TypeError(
                'AsynchronousTrainLoop trains the local modules of an '
                f'infopro_mm.InfoPro model; the model is '
                f'{type(model).__name__}')
        if isinstance(max_iters, bool) or not isinstance(
                max_iters, int) or max_iters < 1:
            raise ValueError('AsynchronousTrainLoop needs max_iters (the '
                             'iterations of every local module) to be a '
                             f'positive integer, got {max_iters!r}')
        self.infopro = model
        self.phase_iters = max_iters
        self.num_phases = model.splitter.num_modules
        last_start = (self.num_phases - 1) * max_iters
        super().__init__(runner, dataloader, self.num_phases * max_iters,
                         last_start + val_begin, val_interval)
        # The runner builds the schedulers after the loop, from these.
        self.scheduler_cfgs = self._phase_schedulers(runner.param_schedulers)
        runner.param_schedulers = copy.deepcopy(self.scheduler_cfgs)
        self.phase: Optional[int] = None
        runner.logger.info(
            f'Asy-InfoPro: {self.num_phases} phases of {max_iters} '
            f'iterations ({self.max_iters} in all), one local module each; '
            'no validation before the last phase (its task head is '
            f'untrained until then): validation from iteration '
            f'{self.val_begin} every {val_interval} and at {self.max_iters}')

    def _phase_schedulers(self, cfgs) -> Optional[List[dict]]:
        """The scheduler configs every phase rebuilds (iteration ends of
        one phase)."""
        if cfgs is None:
            return None
        if isinstance(cfgs, dict) and 'type' in cfgs:
            cfgs = [cfgs]
        if not isinstance(cfgs, Sequence) or not all(
                isinstance(c, dict) for c in cfgs):
            raise TypeError(
                'AsynchronousTrainLoop rebuilds the param schedulers at '
                'every phase: give param_scheduler as a list of configs '
                f'(dicts) for one optimizer, got {cfgs!r}')
        phase_cfgs = []
        for cfg in cfgs:
            cfg = copy.deepcopy(dict(cfg))
            if not cfg.get('by_epoch', True):
                cfg.setdefault('end', self.phase_iters)
            elif not cfg.get('convert_to_iter_based', False):
                raise ValueError(
                    f'{cfg["type"]} is epoch-based (by_epoch=True) and would '
                    'never step in the iteration-based AsynchronousTrainLoop;'
                    ' set by_epoch=False (begin/end in iterations of one '
                    'phase) or convert_to_iter_based=True')
            elif 'end' not in cfg:
                raise ValueError(
                    f'{cfg["type"]} (convert_to_iter_based) needs `end`: the '
                    'epochs of one phase')
            phase_cfgs.append(cfg)
        return phase_cfgs

    def run(self):
        wrapper = self.runner.optim_wrapper
        if isinstance(wrapper, OptimWrapperDict):
            raise TypeError('AsynchronousTrainLoop restarts one optimizer '
                            'per phase; InfoPro trains with one, got '
                            f'{sorted(wrapper.keys())}')
        counts = getattr(wrapper, '_accumulative_counts', 1)
        if self.phase_iters % counts:
            raise ValueError(
                f'max_iters={self.phase_iters} (one phase) must be a multiple '
                f'of accumulative_counts={counts}: an accumulated step must '
                'not span two modules')
        return super().run()

    def run_iter(self, data_batch: Sequence[dict]) -> None:
        phase = self._iter // self.phase_iters
        if phase != self.phase:
            self._enter_phase(phase)
        super().run_iter(data_batch)

    def _enter_phase(self, phase: int) -> None:
        """Make local module ``phase`` the one that trains; restart the
        optimizer and schedulers when the phase starts now (not when a
        resume continues it)."""
        self.infopro.set_active_module(phase)
        starts = self._iter == phase * self.phase_iters
        if starts and phase > 0:
            self._restart_optimization()
        # the logged losses (and their smoothing windows) are the phase's own
        scalars = self.runner.message_hub.log_scalars
        for key in [k for k in scalars
                    if k.startswith(('train/loss', 'train/local'))]:
            del scalars[key]
        self.phase = phase
        what = ("the architecture's task loss (rest of the network)"
                if phase == self.num_phases - 1 else 'its local loss')
        inputs = (f' on the frozen outputs of modules 1..{phase}'
                  if phase else '')
        self.runner.logger.info(
            f'Asy-InfoPro phase {phase + 1}/{self.num_phases} '
            f'{"starts" if starts else "continues"} at iteration '
            f'{self._iter}: local module {phase + 1} trains with {what}'
            f'{inputs}')
        self.runner.message_hub.update_info('asy_infopro_phase', phase)

    def _restart_optimization(self) -> None:
        """Clear the optimizer state, reset the scheduled hyper-parameters
        and rebuild the schedulers."""
        optimizer = self.runner.optim_wrapper.optimizer
        optimizer.state.clear()
        for group in optimizer.param_groups:
            for key in [k for k in group if k.startswith('initial_')]:
                group[key[len('initial_'):]] = group[key]
        if self.scheduler_cfgs is not None:
            self.runner.param_schedulers = self.runner.build_param_scheduler(
                copy.deepcopy(self.scheduler_cfgs))
