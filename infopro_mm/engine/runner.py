"""mmengine's Runner with checkpoint loading and resuming that cannot go
silently wrong."""
import copy
import glob
import os.path as osp
import re
from contextlib import ExitStack
from typing import Callable, Dict, List, Optional, Union

import torch
from mmengine.config import Config
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.registry import LOOPS
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, find_latest_checkpoint

from infopro_mm.registry import RUNNERS
from infopro_mm.utils import (check_arguments, optimizer_of,
                              package_versions, retain_host_memory)
from .checkpoint import (get_rng_state, match_layout, set_rng_state,
                         strip_prefixes)

__all__ = [
    'CheckpointReadError', 'InfoProRunner', 'ResumeError', 'build_runner'
]

CHECKPOINT_NAME = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


class CheckpointReadError(RuntimeError):
    """A checkpoint file cannot be read (missing, truncated, corrupt)."""


class ResumeError(RuntimeError):
    """A resume would not continue the run the checkpoint comes from."""


class _RestoreRngAfterSkip:
    """Dataloader iterator that restores the random state after a skip.

    mmengine's ``IterBasedTrainLoop`` resumes by drawing the already
    trained batches again; the random state the checkpoint saved is the one
    after those batches, so it is set after the last skipped one.
    """

    def __init__(self, iterator, skip: int, rng_state: List[dict]) -> None:
        self.iterator = iterator
        self.skip = skip
        self.rng_state = rng_state

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.iterator)
        if self.skip > 0:
            self.skip -= 1
            if self.skip == 0:
                set_rng_state(self.rng_state)
        return batch


def _is_module_parallel(model) -> bool:
    from infopro_mm.models import InfoProModuleParallel
    return isinstance(model, InfoProModuleParallel)


def build_runner(cfg: Config) -> Runner:
    """The config's runner; :class:`InfoProRunner` unless it sets
    ``runner_type`` (what ``tools/train.py`` and ``tools/test.py`` build).

    Args:
        cfg (Config): A full config (its ``runner_type`` is set if absent).
    """
    cfg.setdefault('runner_type', 'infopro_mm.InfoProRunner')
    return RUNNERS.build(cfg)


@RUNNERS.register_module()
class InfoProRunner(Runner):
    """mmengine's Runner made safe for loading and resuming checkpoints.

    - ``load_from`` (and ``tools/test.py``'s checkpoint) loads InfoPro and
      plain checkpoints into InfoPro and plain models alike and refuses a
      checkpoint whose architecture keys or shapes differ from the model's
      (:func:`~infopro_mm.engine.checkpoint.match_layout`).
    - ``resume`` without a file takes the newest checkpoint of *this* work
      dir that can be read (``last_checkpoint`` of a copied work dir points
      into the original one), saying so when it skips a broken one; a named
      file that cannot be read is refused with the newest good one named.
    - Checkpoints record the InfoPro split and every rank's random state; a
      resume refuses another split and restores the random state, so the
      resumed run equals the uninterrupted one.
    - Validation leaves the random state as it found it, so a run's
      training does not depend on when (or whether) it validates.
    - A misspelt ``train_cfg`` key names the closest valid one.
    - An InfoPro split with a memory budget (``max_memory``) and no
      ``optimizer`` gets the config's ``optim_wrapper.optimizer``, whose
      state the budget must hold.
    - The log starts with the versions of mmcv, mmseg, mmdet, mmpretrain
      and infopro_mm, beside mmengine's environment.
    - Without a GPU the process keeps the host memory it frees for reuse
      (:func:`~infopro_mm.utils.retain_host_memory`), so a CPU training
      step does not page-fault its activations in again and its time (and
      ``split=dict(policy='time')``'s timing) does not depend on what the
      process did before. ``env_cfg=dict(retain_host_memory=False)`` turns
      it off, ``True`` turns it on with a GPU too.

    ``tools/train.py`` and ``tools/test.py`` use it unless the config sets
    ``runner_type``. Arguments are mmengine's ``Runner``'s.
    """

    _read_cache: Optional[tuple] = None

    # ------------------------------------------------------------------
    # reading
    def _read(self, filename: str) -> dict:
        """Load ``filename`` on the CPU, or raise CheckpointReadError."""
        if self._read_cache is not None and self._read_cache[0] == filename:
            return self._read_cache[1]
        try:
            checkpoint = _load_checkpoint(filename, map_location='cpu')
        except Exception as exc:  # torch/zip/pickle errors, missing files
            raise CheckpointReadError(
                f'cannot read checkpoint {filename}: {type(exc).__name__}: '
                f'{exc}'.strip()) from exc
        self._read_cache = (filename, checkpoint)
        return checkpoint

    def _checkpoints_in_work_dir(self) -> List[str]:
        """Checkpoints of the work dir, newest (highest iter/epoch) first."""
        found = []
        for path in glob.glob(osp.join(self.work_dir, '*.pth')):
            match = CHECKPOINT_NAME.match(osp.basename(path))
            if match:
                found.append((int(match.group(1)), osp.getmtime(path), path))
        return [path for *_, path in sorted(found, reverse=True)]

    def _first_readable(self, paths: List[str],
                        warn: bool = False) -> Optional[str]:
        """The first of ``paths`` that can be read (a warning per bad one
        when ``warn``)."""
        for path in paths:
            try:
                self._read(path)
            except CheckpointReadError as exc:
                if warn:
                    self.logger.warning(f'{exc}; trying an older checkpoint')
                continue
            return path
        return None

    def _newest_readable(self, exclude: str = '') -> Optional[str]:
        return self._first_readable([
            path for path in self._checkpoints_in_work_dir()
            if osp.abspath(path) != osp.abspath(exclude)
        ])

    def _last_checkpoint(self) -> Optional[str]:
        """``last_checkpoint`` of the work dir, resolved inside it."""
        recorded = find_latest_checkpoint(self.work_dir)
        if recorded is None:
            return None
        inside = osp.realpath(osp.dirname(recorded)) == osp.realpath(
            self.work_dir)
        if inside:
            return recorded
        local = osp.join(self.work_dir, osp.basename(recorded))
        if osp.exists(local):
            self.logger.warning(
                f'last_checkpoint names {recorded}, outside this work dir '
                f'{self.work_dir} (a copied work dir?): resuming from the '
                f'file of this work dir, {local}')
            return local
        raise ResumeError(
            f'last_checkpoint in {self.work_dir} names {recorded}, which is '
            'outside this work dir and has no copy in it. To continue that '
            f'run on purpose, pass it explicitly: --resume {recorded}')

    def _checkpoint_to_resume(self) -> Optional[str]:
        """The newest readable checkpoint of the work dir, or None."""
        last = self._last_checkpoint()
        candidates = ([last] if last else []) + [
            path for path in self._checkpoints_in_work_dir()
            if not last or osp.abspath(path) != osp.abspath(last)
        ]
        path = self._first_readable(candidates, warn=True)
        if path is not None and path != candidates[0]:
            self.logger.warning(
                f'resuming from {path}, the newest checkpoint of '
                f'{self.work_dir} that can be read')
        if path is None and candidates:
            raise ResumeError(
                f'no checkpoint of {self.work_dir} can be read (tried '
                f'{", ".join(candidates)})')
        return path

    # ------------------------------------------------------------------
    # loading
    def load_or_resume(self) -> None:
        if self._has_loaded:
            return
        if self._resume:
            filename = self._load_from
            if filename is None:
                filename = self._checkpoint_to_resume()
                if filename is None:
                    self.logger.info(
                        f'--resume: no checkpoint in {self.work_dir} yet, '
                        'training from the start')
                    return
                self.logger.info(f'Auto resumed from {filename}.')
            self.resume(filename)
        elif self._load_from is not None:
            self.load_checkpoint(self._load_from)
        self._has_loaded = True

    def _read_or_explain(self, filename: str) -> dict:
        try:
            return self._read(filename)
        except CheckpointReadError as exc:
            good = self._newest_readable(exclude=filename)
            hint = (f'; the newest readable checkpoint in {self.work_dir} '
                    f'is {good}' if good else '')
            raise CheckpointReadError(f'{exc}{hint}') from exc

    def load_checkpoint(self,
                        filename: str,
                        map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False,
                        revise_keys: list = [(r'^module\.', '')]) -> dict:
        """Load weights, mapping between InfoPro and plain layouts.

        ``map_location`` and ``strict`` are accepted for mmengine's callers;
        the file is read on the CPU (tensors are copied into the model's
        device) and the architecture is always matched strictly.
        """
        checkpoint = self._read_or_explain(filename)
        self._read_cache = None
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self._inner_model()
        state_dict = checkpoint.get('state_dict', checkpoint)
        state_dict = strip_prefixes(dict(state_dict), revise_keys)
        state_dict, notes = match_layout(
            model, state_dict, require_heads=self._resume)
        model.load_state_dict(state_dict, strict=False)
        for note in notes:
            self.logger.info(f'{filename}: {note}')
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def resume(self,
               filename: str,
               resume_optimizer: bool = True,
               resume_param_scheduler: bool = True,
               map_location: Union[str, Callable] = 'default') -> None:
        checkpoint = self._read_or_explain(filename)
        meta = checkpoint.get('meta', {})
        current = self._split_meta()
        saved = meta.get('infopro_split')
        if current is not None and saved is not None and saved != current:
            raise ResumeError(
                f'{filename} was trained with another split: checkpoint '
                f'{saved}, config {current}. Resume with the split of the '
                'checkpoint, or start a new run (load_from) to change it')
        super().resume(filename, resume_optimizer, resume_param_scheduler,
                       map_location)
        states = meta.get('rng_states')
        if states is None:
            self.logger.warning(
                f'{filename} has no random state (saved by another runner): '
                'the resumed run will not repeat the uninterrupted one')
            return
        if len(states) != get_world_size():
            self.logger.warning(
                f'{filename} was saved by {len(states)} processes, this run '
                f'has {get_world_size()}: random states are not restored')
            return
        state = states[get_rank()]
        loop = self.train_loop
        if getattr(loop, 'dataloader_iterator', None) is not None and \
                loop.iter > 0:
            loop.dataloader_iterator = _RestoreRngAfterSkip(
                loop.dataloader_iterator, loop.iter, state)
        else:
            set_rng_state(state)

    # ------------------------------------------------------------------
    # saving
    def _inner_model(self):
        """The model without its DDP wrapper and TTA wrapper."""
        model = self.model.module if is_model_wrapper(
            self.model) else self.model
        return model.module if isinstance(model, BaseTTAModel) else model

    def _split_meta(self) -> Optional[dict]:
        model = self._inner_model()
        return model.split_meta() if hasattr(model, 'split_meta') else None

    def save_checkpoint(self,
                        out_dir: str,
                        filename: str,
                        file_client_args: Optional[dict] = None,
                        save_optimizer: bool = True,
                        save_param_scheduler: bool = True,
                        meta: Optional[dict] = None,
                        by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """mmengine's, plus the split and every rank's random state.

        Called on every rank (the random states are gathered); rank 0
        writes.
        """
        meta = dict(meta or {})
        meta['rng_states'] = all_gather_object(get_rng_state())
        split = self._split_meta()
        if split is not None:
            meta['infopro_split'] = split
        with ExitStack() as stack:
            if _is_module_parallel(self.model):
                # every module's weights and optimizer state to rank 0
                self.model.synchronize()
                stack.enter_context(self.optim_wrapper.gathered_state())
            super().save_checkpoint(out_dir, filename, file_client_args,
                                    save_optimizer, save_param_scheduler,
                                    meta, by_epoch, backend_args)

    # ------------------------------------------------------------------
    # environment
    def setup_env(self, env_cfg: Dict) -> None:
        """mmengine's, and host memory kept for reuse without a GPU."""
        super().setup_env(env_cfg)
        retain = env_cfg.get('retain_host_memory')
        if retain is None:
            retain = not torch.cuda.is_available()
        self._retain_host_memory = (bool(retain), bool(retain)
                                    and retain_host_memory())

    def _log_env(self, env_cfg: dict) -> None:
        super()._log_env(env_cfg)
        self.logger.info('OpenMMLab packages: ' + ', '.join(
            f'{k} {v}' for k, v in package_versions().items()))
        requested, applied = self._retain_host_memory
        if requested and not applied:
            self.logger.warning(
                'Host memory: retain_host_memory needs glibc (Linux); freed '
                'memory goes back to the OS as usual')
        elif applied:
            self.logger.info(
                'Host memory: freed blocks are kept for reuse (glibc '
                'M_MMAP_MAX=0, M_TRIM_THRESHOLD=-1), so CPU steps do not '
                'page-fault their activations in again; '
                'env_cfg.retain_host_memory=False turns it off')

    # ------------------------------------------------------------------
    # model
    def build_model(self, model):
        """mmengine's, with the optimizer told to a split with a budget."""
        from infopro_mm.models import is_infopro_config
        optimizer = optimizer_of(self.optim_wrapper)
        if isinstance(model, dict) and is_infopro_config(model):
            split = model.get('split') or {}
            if (split.get('max_memory') is not None and optimizer
                    and split.get('optimizer') is None):
                model = copy.deepcopy(model)
                model['split']['optimizer'] = optimizer
        return super().build_model(model)

    # ------------------------------------------------------------------
    # loops
    def build_val_loop(self, loop):
        loop = super().build_val_loop(loop)
        run = loop.run

        def run_keeping_rng_state():
            state = get_rng_state()
            try:
                return run()
            finally:
                set_rng_state(state)

        loop.run = run_keeping_rng_state
        return loop

    def build_optim_wrapper(self, optim_wrapper):
        """mmengine's; module-parallel ranks keep only their module's
        parameters (``InfoProModuleParallel.restrict_optimizer``)."""
        optim_wrapper = super().build_optim_wrapper(optim_wrapper)
        if _is_module_parallel(self.model):
            self.model.restrict_optimizer(optim_wrapper)
        return optim_wrapper

    def build_train_loop(self, loop):
        if _is_module_parallel(self.model) and isinstance(
                loop, dict) and loop.get('type') not in (
                    'ModuleParallelTrainLoop',
                    'infopro_mm.ModuleParallelTrainLoop'):
            raise ValueError(
                'InfoProModuleParallel needs train_cfg.type='
                "'infopro_mm.ModuleParallelTrainLoop' (it gives rank 0 the "
                'single-process data order and the other ranks no data), '
                f'got {loop.get("type", "IterBasedTrainLoop")!r}')
        if isinstance(loop, dict):
            keys = set(loop) - {'type', 'by_epoch', '_scope_'}
            if 'type' in loop:
                loop_cls = LOOPS.get(loop['type'])
            else:
                from mmengine.runner import (EpochBasedTrainLoop,
                                             IterBasedTrainLoop)
                loop_cls = (EpochBasedTrainLoop if loop.get('by_epoch')
                            else IterBasedTrainLoop)
            if isinstance(loop_cls, type):
                check_arguments('train_cfg', loop_cls,
                                keys - {'runner', 'dataloader'})
        return super().build_train_loop(loop)
