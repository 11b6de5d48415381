"""Training loop of module-parallel InfoPro."""
from contextlib import contextmanager
from itertools import repeat
from typing import Dict, List, Optional, Tuple, Union

from mmengine.runner import IterBasedTrainLoop
from torch.utils.data import DataLoader

from infopro_mm.registry import LOOPS

__all__ = ['ModuleParallelTrainLoop']


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

    - Rank 0 reads the data in the order a single process would (its
      sampler shards for one replica, not for all K processes); the other
      ranks build the dataloader without workers and never read it: their
      ``train_step`` gets None and receives its batch from the previous
      rank.
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
        with _sampler_world(0, 1):
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
