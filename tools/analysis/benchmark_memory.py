"""Memory and time benchmark: InfoPro vs end-to-end vs gradient checkpointing.

Usage::

    python tools/analysis/benchmark_memory.py CONFIG \
        [--methods e2e,infopro,checkpoint,infopro+checkpoint] \
        [--num-modules 2 3 4] [--policy balanced uniform time] \
        [--input-size H W] [--batch-size N] [--iters N] [--warmup N] \
        [--no-allocator] [--head-width W] [--device cpu|cuda] [--threads N] \
        [--out result.json] [--plot result.png] [--cfg-options k=v ...]

CONFIG is an InfoPro config (model type ``infopro_mm.InfoPro``) or a plain
mmseg / mmpretrain config (``mmseg::...`` and ``mmpretrain::...`` names are
accepted too); for a plain config the paper's local heads are used
(``ReconstructionHead`` + ``LocalSegHead`` for segmentors,
``ReconstructionHead`` + ``LocalClsHead`` for classifiers).

Every method is one InfoPro model built from the config's architecture:

- ``e2e``: ``split=dict(num_modules=1)`` (end-to-end back-propagation);
- ``infopro``: ``split=dict(num_modules=K, policy=P, input_size=(H, W),
  batch_size=N)`` for every K of ``--num-modules`` and P of ``--policy``;
- ``checkpoint``: e2e with ``architecture.backbone.with_cp=True``;
- ``infopro+checkpoint``: every InfoPro variant with ``with_cp=True``.

Each model runs ``--warmup`` untimed and ``--iters`` timed training
iterations (``model.train_step`` with ``infopro_mm.InfoProOptimWrapper``
around plain SGD) on a synthetic batch in the downstream format, then one
instrumented iteration under :class:`~infopro_mm.utils.SavedTensorTracker`,
:class:`torch.utils.flop_counter.FlopCounterMode` and (unless
``--no-allocator``) ``torch.profiler.profile(profile_memory=True)``. With
``--iters 0`` that instrumented iteration also gives the step time (for
models too heavy to run twice; ``step_time_source`` says which).

Figures (docs/benchmarks.md says how they are measured):

- ``saved_peak_bytes``: peak bytes of tensors saved for backward (exact,
  device independent), with a per-module breakdown;
- ``allocator_peak_bytes``: peak of the bytes allocated during one iteration,
  reconstructed from the profiler's memory events;
- ``cuda_max_allocated_bytes`` / ``cuda_max_reserved_bytes`` (CUDA only):
  ``torch.cuda.max_memory_*`` over the timed iterations, reset after the
  warm-up;
- ``flops``: FLOPs of one iteration (forward, backward and recomputation);
- ``step_time_s``: median wall time of the timed iterations;
- ``modules``: per local module, the saved bytes of its basic layers, of
  each local head (or of the neck and task heads for the last module) and
  its peak;

and every figure as a ratio to ``e2e`` of the same run.
"""
import argparse
import copy
import gc
import json
import logging
import os.path as osp
import platform
import statistics
import sys
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import MMLogger, print_log
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.models import (BaseSplitter, dummy_data_samples,
                               is_infopro_config)
from infopro_mm.registry import MODELS
from infopro_mm.utils import (SavedTensorTracker, flop_counter, format_mib,
                              retain_host_memory)

METHODS = ('e2e', 'infopro', 'checkpoint', 'infopro+checkpoint')
SEG_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
    task=dict(type='infopro_mm.LocalSegHead'))
CLS_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
    task=dict(type='infopro_mm.LocalClsHead', arch='large'))
# Figures that get a ratio to E2E, in table order.
FIGURES = ('saved_peak_bytes', 'allocator_peak_bytes',
           'cuda_max_allocated_bytes', 'cuda_max_reserved_bytes', 'flops',
           'step_time_s')


@dataclass(frozen=True)
class Method:
    """One benchmarked training method.

    Args:
        method (str): One of :data:`METHODS`.
        num_modules (int): K (1 for ``e2e`` and ``checkpoint``).
        policy (str, optional): Split policy of InfoPro variants.
    """

    method: str
    num_modules: int = 1
    policy: Optional[str] = None

    @property
    def name(self) -> str:
        """E.g. ``'infopro-K2-balanced'`` or ``'e2e'``."""
        if self.num_modules == 1:
            return self.method
        return f'{self.method}-K{self.num_modules}-{self.policy}'

    @property
    def with_cp(self) -> bool:
        """Whether the backbone uses gradient checkpointing."""
        return 'checkpoint' in self.method


def expand_methods(methods: Sequence[str], num_modules: Sequence[int],
                   policies: Sequence[str]) -> List[Method]:
    """Every method to run, ``e2e`` first (the reference of the ratios).

    Args:
        methods (Sequence[str]): Names from :data:`METHODS`.
        num_modules (Sequence[int]): K values of the InfoPro variants.
        policies (Sequence[str]): Split policies of the InfoPro variants.

    Returns:
        list[Method]: The methods, without duplicates.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f'unknown methods {sorted(unknown)}; choose from '
                         f'{", ".join(METHODS)}')
    bad = [k for k in num_modules if k < 2]
    if bad:
        raise ValueError(f'--num-modules must be >= 2 (K=1 is e2e), got {bad}')
    expanded = [Method('e2e')]
    for method in methods:
        if method in ('e2e', 'checkpoint'):
            expanded.append(Method(method))
        else:
            expanded.extend(
                Method(method, k, policy) for k in num_modules
                for policy in policies)
    unique = []
    for method in expanded:
        if method not in unique:
            unique.append(method)
    return unique


# ----------------------------------------------------------------------
# configs and models
def load_config(path: str,
                cfg_options: Optional[dict] = None) -> Config:
    """Load a config file or a ``scope::path`` config of a downstream repo.

    Args:
        path (str): A file path or e.g. ``'mmseg::deeplabv3/...py'``.
        cfg_options (dict, optional): Overrides (``--cfg-options``).

    Returns:
        Config: The merged config.
    """
    if '::' in path and not osp.exists(path):
        from mmengine.hub import get_config
        cfg = get_config(path)
    else:
        cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def infopro_template(cfg: Config,
                     head_width: Optional[float] = None) -> Tuple[dict, str]:
    """The InfoPro model config of ``cfg``; of its ``split``, only the type.

    Args:
        cfg (Config): An InfoPro config or a plain downstream config.
        head_width (float, optional): Width multiplier set on every local
            head (paper Appendix H). Defaults to None (the paper's heads).

    Returns:
        tuple[dict, str]: The model config and the default scope to build
        it in.
    """
    scope = cfg.get('default_scope', None)
    model = copy.deepcopy(cfg.model.to_dict() if isinstance(
        cfg.model, ConfigDict) else cfg.model)
    top_preprocessor = cfg.get('data_preprocessor', None)
    if is_infopro_config(model):
        # as mmengine's Runner does with a top-level data_preprocessor
        if top_preprocessor is not None:
            model.setdefault('data_preprocessor',
                             copy.deepcopy(top_preprocessor))
        # the splitter type stays (a family's own); its cuts are per method
        split_type = (model.pop('split', None) or {}).get('type')
        if split_type is not None:
            model['split'] = dict(type=split_type)
        if not model.get('local_heads'):
            model['local_heads'] = default_heads(model['architecture'], scope)
    else:
        architecture = model
        if top_preprocessor is not None:
            architecture.setdefault('data_preprocessor',
                                    copy.deepcopy(top_preprocessor))
        model = dict(
            type='infopro_mm.InfoPro',
            architecture=architecture,
            local_heads=default_heads(architecture, scope))
    model['type'] = 'infopro_mm.InfoPro'
    # the weights scale losses, not memory: any value measures the same
    model.setdefault('loss_weights',
                     {name: 1.0 for name in model['local_heads']})
    # no pretrained weights are loaded (init_weights is never called);
    # drop the key so that nothing tries to fetch them
    model['architecture'].pop('pretrained', None)
    if head_width is not None:
        model['local_heads'] = {
            name: None if head is None else dict(head, width=head_width)
            for name, head in model['local_heads'].items()
        }
    return model, scope


def default_heads(architecture: dict, scope: Optional[str]) -> dict:
    """The paper's InfoPro (Softmax) heads for a downstream model config.

    Args:
        architecture (dict): The downstream model config.
        scope (str, optional): The config's default scope.

    Returns:
        dict: ``local_heads`` for :class:`~infopro_mm.models.InfoPro`.
    """
    model_cls = architecture['type']
    if isinstance(model_cls, str):
        with MODELS.switch_scope_and_registry(scope) as registry:
            model_cls = registry.get(model_cls)
    if model_cls is None:
        raise KeyError(f'model type {architecture["type"]!r} is not '
                       f'registered in scope {scope!r}')
    from mmpretrain.models.classifiers import BaseClassifier
    from mmseg.models.segmentors import BaseSegmentor
    if issubclass(model_cls, BaseSegmentor):
        return copy.deepcopy(SEG_HEADS)
    if issubclass(model_cls, BaseClassifier):
        return copy.deepcopy(CLS_HEADS)
    raise TypeError(
        f'no default local heads for {model_cls.__name__}: give an InfoPro '
        'config (model type infopro_mm.InfoPro with local_heads)')


def build_model(template: dict,
                scope: Optional[str],
                method: Method,
                input_size: Tuple[int, int],
                batch_size: int,
                device: torch.device,
                boundaries: Optional[Sequence[str]] = None
                ) -> torch.nn.Module:
    """Build the InfoPro model of one method.

    Args:
        template (dict): From :func:`infopro_template`.
        scope (str, optional): Default scope to build in.
        method (Method): The method.
        input_size (tuple[int, int]): Training input (H, W).
        batch_size (int): Batch size.
        device (torch.device): Where the model runs.
        boundaries (Sequence[str], optional): Cuts to use instead of the
            method's K and policy. Defaults to None.

    Returns:
        nn.Module: The model, in train mode.
    """
    cfg = copy.deepcopy(template)
    if method.with_cp:
        cfg['architecture']['backbone']['with_cp'] = True
    # mmseg preprocessors pad every batch to a fixed `size` (the config's
    # crop): make it the benchmarked input size
    for owner in (cfg, cfg['architecture']):
        preprocessor = owner.get('data_preprocessor', None)
        if preprocessor is not None and preprocessor.get('size'):
            preprocessor['size'] = tuple(input_size)
    split = cfg.get('split', {})  # the template's splitter type, if any
    if boundaries is not None:
        cfg['split'] = dict(split, boundaries=list(boundaries))
    elif method.num_modules == 1:
        cfg['split'] = dict(split, num_modules=1)
    else:
        cfg['split'] = dict(
            split,
            num_modules=method.num_modules,
            policy=method.policy,
            input_size=tuple(input_size),
            batch_size=batch_size)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg)
    return model.to(device).train()


def synthetic_batch(model: torch.nn.Module, batch_size: int,
                    input_size: Tuple[int, int], seed: int = 0) -> dict:
    """A raw batch in the architecture's downstream format.

    uint8 images and the data samples of
    :func:`~infopro_mm.models.dummy_data_samples` with random labels: an
    mmseg ``gt_sem_seg`` with an ignored band at the top, or an mmpretrain
    ``gt_label``.

    Args:
        model (nn.Module): The InfoPro model.
        batch_size (int): Number of samples.
        input_size (tuple[int, int]): (H, W).
        seed (int): Random seed. Defaults to 0.

    Returns:
        dict: ``inputs`` and ``data_samples``, as a dataloader yields them.
    """
    height, width = input_size
    gen = torch.Generator().manual_seed(seed)
    info = model.task_info
    num_classes = info.get('num_classes', 2)
    inputs = [
        torch.randint(0, 256, (3, height, width), generator=gen,
                      dtype=torch.uint8) for _ in range(batch_size)
    ]
    samples = dummy_data_samples(model.architecture, batch_size,
                                 (height, width))
    for sample in samples:
        if 'gt_sem_seg' in sample:
            label = torch.randint(
                0, num_classes, (1, height, width), generator=gen)
            label[:, :max(1, height // 16)] = info.get('ignore_index', 255)
            sample.gt_sem_seg.data = label
        else:
            sample.set_gt_label(
                int(torch.randint(0, num_classes, (1, ), generator=gen)))
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------
# measurements
def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class ModuleRecorder:
    """Per-module saved-tensor breakdown of one InfoPro train step.

    Wraps, on the instances only, the model's ``local_losses``, each local
    head's ``loss``, the optimizer wrapper's ``local_backward`` and
    ``update_params`` and hooks the backbone's forward, reading
    ``tracker.live_bytes`` at each point. Module k's window runs from the
    end of module k-1's local backward to the end of its own backward; its
    ``peak_bytes`` is the tracker's peak in that window (restarted at each
    local backward's end), ``carried_bytes`` what was alive when it started
    (0 when module k-1 released everything), ``backbone_bytes`` what its
    basic layers saved (its input included), ``head_bytes`` what each local
    head saved and, for the last module, ``tail_bytes`` what the neck, the
    task heads and their losses saved.

    Args:
        model (nn.Module): The InfoPro model.
        optim_wrapper: Its optimizer wrapper.
        tracker (SavedTensorTracker): The active tracker.
    """

    def __init__(self, model, optim_wrapper,
                 tracker: SavedTensorTracker) -> None:
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.tracker = tracker
        self.modules: List[dict] = []
        self._current: dict = {}

    def _new_module(self) -> None:
        self._current = dict(
            module=len(self.modules) + 1, live_before=self.tracker.live_bytes)
        self.modules.append(self._current)

    @contextmanager
    def record(self) -> Iterator['ModuleRecorder']:
        """Install the instance wrappers for one train step."""
        model, wrapper, tracker = self.model, self.optim_wrapper, self.tracker
        local_losses = model.local_losses
        local_backward = wrapper.local_backward
        update_params = wrapper.update_params

        def on_local_losses(module, feat, batch):
            self._current['backbone_bytes'] = (
                tracker.live_bytes - self._current['live_before'])
            self._current['head_bytes'] = {}
            return local_losses(module, feat, batch)

        def on_local_backward(loss, **kwargs):
            local_backward(loss, **kwargs)
            self._current['peak_bytes'] = tracker.peak_bytes
            tracker.reset_peak()
            self._new_module()

        def on_update_params(loss, *args, **kwargs):
            current = self._current
            current.setdefault('backbone_bytes', None)
            current['tail_bytes'] = (
                tracker.live_bytes - current['live_before'] -
                (current['backbone_bytes'] or 0))
            update_params(loss, *args, **kwargs)
            current['peak_bytes'] = tracker.peak_bytes

        def on_backbone_end(module, args, output):
            if 'head_bytes' not in self._current:  # the last module
                self._current['backbone_bytes'] = (
                    tracker.live_bytes - self._current['live_before'])

        def head_wrapper(name, loss_fn):

            def wrapped(feat, batch):
                before = tracker.live_bytes
                loss = loss_fn(feat, batch)
                self._current['head_bytes'][name] = (
                    tracker.live_bytes - before)
                return loss

            return wrapped

        heads = [(head, name) for module_heads in model.local_heads
                 for name, head in module_heads.items()]
        model.local_losses = on_local_losses
        wrapper.local_backward = on_local_backward
        wrapper.update_params = on_update_params
        for head, name in heads:
            head.loss = head_wrapper(name, head.loss)
        handle = model.architecture.backbone.register_forward_hook(
            on_backbone_end)
        tracker.reset_peak()
        self.modules.clear()
        self._new_module()
        try:
            yield self
        finally:
            handle.remove()
            for head, _ in heads:
                del head.loss
            del model.local_losses
            del wrapper.local_backward
            del wrapper.update_params
            for entry in self.modules:
                entry['carried_bytes'] = entry.pop('live_before')


def allocator_peak(prof: torch.profiler.profile,
                   device: torch.device) -> Optional[int]:
    """Peak bytes allocated during a profiled window.

    The profiler (``profile_memory=True``) records one ``[memory]`` event
    per allocation (positive ``nbytes``) and per free (negative) of memory
    allocated while it runs; frees of blocks allocated before it started
    are not reported. The running sum of the events in time order is
    therefore the bytes allocated in the window and still alive, and its
    maximum is the allocator peak above what was alive at the start
    (parameters, buffers, optimizer state, the model's inputs).

    Args:
        prof (torch.profiler.profile): A finished profiler.
        device (torch.device): Device whose events count.

    Returns:
        int | None: The peak, or None when no event was recorded.
    """
    wanted = 'CUDA' if device.type == 'cuda' else 'CPU'
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == '[memory]' and e.device_type().name == wanted
    ]
    if not events:
        return None
    live = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def benchmark_method(template: dict, scope: Optional[str], method: Method,
                     input_size: Tuple[int, int], batch_size: int,
                     iters: int, warmup: int, device: torch.device,
                     allocator: bool = True) -> dict:
    """Build one method's model and measure it.

    Args:
        template (dict): From :func:`infopro_template`.
        scope (str, optional): Default scope to build in.
        method (Method): The method.
        input_size (tuple[int, int]): Training input (H, W).
        batch_size (int): Batch size.
        iters (int): Timed plain iterations (0: the instrumented iteration
            gives the step time).
        warmup (int): Untimed iterations before them.
        device (torch.device): Where to run.
        allocator (bool): Whether to profile the allocator.

    Returns:
        dict: The method's figures (see the module docstring).
    """
    start = time.perf_counter()
    model = build_model(template, scope, method, input_size, batch_size,
                        device)
    build_s = time.perf_counter() - start
    optim_wrapper = build_optim_wrapper(
        model,
        dict(
            type='infopro_mm.InfoProOptimWrapper',
            optimizer=dict(type='SGD', lr=1e-4)))
    splitter = model.splitter
    result = dict(
        name=method.name,
        method=method.method,
        num_modules=splitter.num_modules,
        policy=method.policy,
        with_cp=method.with_cp,
        boundaries=splitter.boundaries,
        module_layers=[[m[0].name, m[-1].name]
                       for m in splitter.module_layers()],
        build_s=round(build_s, 3))
    if model.memory_profile is not None:
        result['planner_estimate_bytes'] = model.memory_profile.module_bytes(
            splitter.cuts)

    for _ in range(warmup):
        model.train_step(
            synthetic_batch(model, batch_size, input_size), optim_wrapper)
    # Made before the clock starts: batch synthesis is not training time.
    batches = [
        synthetic_batch(model, batch_size, input_size) for _ in range(iters)
    ]
    _sync(device)
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for batch in batches:
        _sync(device)
        tic = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        _sync(device)
        times.append(time.perf_counter() - tic)
    del batches
    if device.type == 'cuda' and iters:
        result['cuda_max_allocated_bytes'] = torch.cuda.max_memory_allocated(
            device)
        result['cuda_max_reserved_bytes'] = torch.cuda.max_memory_reserved(
            device)

    # One instrumented iteration: saved tensors, FLOPs and (profiler) the
    # allocator. None of the instruments allocates or retains tensor memory
    # (checked: the allocator peak equals a plain iteration's).
    batch = synthetic_batch(model, batch_size, input_size)
    with ExitStack() as stack:
        tracker = stack.enter_context(SavedTensorTracker(ignore=model))
        flops = stack.enter_context(flop_counter())
        recorder = stack.enter_context(
            ModuleRecorder(model, optim_wrapper, tracker).record())
        prof = None
        if allocator:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if device.type == 'cuda':
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            prof = stack.enter_context(
                torch.profiler.profile(
                    activities=activities, profile_memory=True))
        _sync(device)
        tic = time.perf_counter()
        model.train_step(batch, optim_wrapper)
        _sync(device)
        instrumented_s = time.perf_counter() - tic
    if device.type == 'cuda' and not iters:
        result['cuda_max_allocated_bytes'] = torch.cuda.max_memory_allocated(
            device)
        result['cuda_max_reserved_bytes'] = torch.cuda.max_memory_reserved(
            device)
    result.setdefault('cuda_max_allocated_bytes', None)
    result.setdefault('cuda_max_reserved_bytes', None)
    result['saved_peak_bytes'] = max(m['peak_bytes']
                                     for m in recorder.modules)
    result['modules'] = recorder.modules
    result['flops'] = int(flops.get_total_flops())
    result['allocator_peak_bytes'] = (
        allocator_peak(prof, device) if prof is not None else None)
    del prof
    result['step_times_s'] = [round(t, 4) for t in times]
    result['instrumented_step_s'] = round(instrumented_s, 4)
    if times:
        result['step_time_s'] = statistics.median(times)
        result['step_time_source'] = 'plain'
    else:  # --iters 0: the instrumented iteration is the only timing
        result['step_time_s'] = instrumented_s
        result['step_time_source'] = 'instrumented'
    del model, optim_wrapper
    gc.collect()
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def add_ratios(results: List[dict]) -> None:
    """Add ``ratios`` (figure / E2E figure) to every result, in place."""
    reference = next(r for r in results if r['name'] == 'e2e')
    for result in results:
        result['ratios'] = {
            key: (result[key] / reference[key]
                  if result.get(key) is not None and reference.get(key)
                  else None)
            for key in FIGURES
        }


def run_benchmark(cfg: Config,
                  methods: Sequence[Method],
                  input_size: Tuple[int, int],
                  batch_size: int,
                  iters: int = 5,
                  warmup: int = 2,
                  device: str = 'cpu',
                  allocator: bool = True,
                  head_width: Optional[float] = None) -> dict:
    """Measure every method on one config.

    Args:
        cfg (Config): The loaded config.
        methods (Sequence[Method]): From :func:`expand_methods` (``e2e``
            included).
        input_size (tuple[int, int]): Training input (H, W).
        batch_size (int): Batch size.
        iters (int): Timed iterations per method. Defaults to 5.
        warmup (int): Untimed iterations before them. Defaults to 2.
        device (str): ``'cpu'`` or ``'cuda'``. Defaults to ``'cpu'``.
        allocator (bool): Whether to measure the allocator peak with the
            profiler. Defaults to True.
        head_width (float, optional): Width multiplier of every local head.

    Returns:
        dict: Settings and one entry per method under ``results``.
    """
    if 'e2e' not in [m.name for m in methods]:
        raise ValueError('the methods must include e2e (the reference of '
                         'the ratios)')
    template, scope = infopro_template(cfg, head_width)
    device = torch.device(device)
    logger = MMLogger.get_current_instance()
    results = []
    for method in methods:
        tic = time.perf_counter()
        results.append(
            benchmark_method(template, scope, method, input_size, batch_size,
                             iters, warmup, device, allocator))
        logger.info(f'{method.name}: measured in '
                    f'{time.perf_counter() - tic:.1f} s')
    add_ratios(results)
    return dict(
        config=cfg.filename,
        input_size=list(input_size),
        batch_size=batch_size,
        iters=iters,
        warmup=warmup,
        device=str(device),
        device_name=(torch.cuda.get_device_name(device)
                     if device.type == 'cuda' else platform.processor()
                     or platform.machine()),
        num_threads=torch.get_num_threads(),
        torch=torch.__version__,
        head_width=head_width,
        local_heads=template['local_heads'],
        loss_weights=template.get('loss_weights'),
        optimizer='SGD(lr=1e-4), infopro_mm.InfoProOptimWrapper',
        results=results)


# ----------------------------------------------------------------------
# reporting
def _ratio(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.3f}'


def format_table(report: dict) -> str:
    """A markdown table of the report, one row per method."""
    results = report['results']
    cuda = any(r.get('cuda_max_allocated_bytes') is not None for r in results)
    header = ['method', 'cuts after', 'saved peak MiB', 'x E2E']
    if any(r.get('allocator_peak_bytes') is not None for r in results):
        header += ['allocator peak MiB', 'x E2E']
    if cuda:
        header += ['CUDA max alloc MiB', 'x E2E', 'CUDA max reserved MiB',
                   'x E2E']
    header += ['GFLOPs/iter', 'x E2E', 'step s', 'x E2E']
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '---|' * len(header)]
    for r in results:
        ratios = r['ratios']
        row = [r['name'], ', '.join(r['boundaries']) or '-',
               format_mib(r['saved_peak_bytes']),
               _ratio(ratios['saved_peak_bytes'])]
        if 'allocator peak MiB' in header:
            row += [format_mib(r['allocator_peak_bytes']),
                    _ratio(ratios['allocator_peak_bytes'])]
        if cuda:
            row += [format_mib(r['cuda_max_allocated_bytes']),
                    _ratio(ratios['cuda_max_allocated_bytes']),
                    format_mib(r['cuda_max_reserved_bytes']),
                    _ratio(ratios['cuda_max_reserved_bytes'])]
        time_s = r['step_time_s']
        row += [f'{r["flops"] / 1e9:,.1f}', _ratio(ratios['flops']),
                '-' if time_s is None else f'{time_s:.2f}',
                _ratio(ratios['step_time_s'])]
        lines.append('| ' + ' | '.join(row) + ' |')
    return '\n'.join(lines)


def format_modules(report: dict) -> str:
    """A markdown table of the per-module saved-tensor breakdown."""
    lines = [
        '| method | module | layers | backbone MiB | local heads MiB '
        '| neck + task heads MiB | module peak MiB |',
        '|' + '---|' * 7
    ]
    for r in report['results']:
        for m, (first, last) in zip(r['modules'], r['module_layers']):
            heads = m.get('head_bytes')
            heads = ', '.join(f'{name} {format_mib(b)}'
                              for name, b in heads.items()) if heads else '-'
            lines.append(f'| {r["name"]} | {m["module"]} | {first}..{last} | '
                         f'{format_mib(m.get("backbone_bytes"))} | {heads} | '
                         f'{format_mib(m.get("tail_bytes"))} | '
                         f'{format_mib(m["peak_bytes"])} |')
    return '\n'.join(lines)


def plot(report: dict, path: str) -> None:
    """Scatter memory ratio against time ratio (and FLOPs ratio).

    Left panel: peak memory / E2E against step time / E2E (methods whose
    time was measured); right panel: against FLOPs / E2E (every method).
    Filled markers: saved-activation peak; hollow: allocator (CPU) or
    ``max_memory_allocated`` (CUDA) peak.

    Args:
        report (dict): From :func:`run_benchmark`.
        path (str): Output image path.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    styles = {
        'e2e': ('black', 'o'),
        'checkpoint': ('tab:gray', 's'),
        'infopro-balanced': ('tab:blue', 'o'),
        'infopro-uniform': ('tab:orange', 'D'),
        'infopro+checkpoint-balanced': ('tab:green', '^'),
        'infopro+checkpoint-uniform': ('tab:red', 'v'),
    }
    second = ('cuda_max_allocated_bytes'
              if report['device'].startswith('cuda') else
              'allocator_peak_bytes')
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), sharey=True)
    for ax, x_key, x_label in ((axes[0], 'step_time_s', 'step time / E2E'),
                               (axes[1], 'flops', 'FLOPs / E2E')):
        seen = set()
        for r in report['results']:
            x = r['ratios'][x_key]
            if x is None:
                continue
            family = r['method'] + (f'-{r["policy"]}' if r['policy'] else '')
            color, marker = styles.get(family, ('tab:purple', 'x'))
            label = family if family not in seen else None
            seen.add(family)
            y = r['ratios']['saved_peak_bytes']
            ax.scatter(x, y, color=color, marker=marker, s=60, label=label)
            y2 = r['ratios'][second]
            if y2 is not None:
                ax.scatter(x, y2, facecolors='none', edgecolors=color,
                           marker=marker, s=60)
            if r['num_modules'] > 1:
                ax.annotate(f'K={r["num_modules"]}', (x, y),
                            textcoords='offset points', xytext=(5, 4),
                            fontsize=8)
        ax.axhline(1.0, color='lightgray', lw=0.8, zorder=0)
        ax.axvline(1.0, color='lightgray', lw=0.8, zorder=0)
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel('peak memory / E2E  (filled: saved activations, '
                       'hollow: allocator)')
    axes[1].legend(fontsize=8, loc='best')
    size = 'x'.join(str(s) for s in report['input_size'])
    fig.suptitle(f'{osp.basename(report["config"])}  {size}, batch '
                 f'{report["batch_size"]}, {report["device"]}')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def default_input(cfg: Config) -> Tuple[Tuple[int, int], int]:
    """Input size and batch size a config trains with, where it says so."""
    crop = cfg.get('crop_size', None)
    size = tuple(crop) if crop else (224, 224)
    loader = cfg.get('train_dataloader', None)
    batch = loader.get('batch_size', 2) if loader else 2
    return size, batch


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Peak memory, FLOPs and step time of InfoPro, '
        'end-to-end training and gradient checkpointing')
    parser.add_argument('config', help='InfoPro or downstream config file '
                        '(or mmseg::/mmpretrain:: config name)')
    parser.add_argument(
        '--methods',
        default=','.join(METHODS),
        help='comma-separated subset of ' + ','.join(METHODS) +
        ' (e2e always runs: it is the reference)')
    parser.add_argument(
        '--num-modules', type=int, nargs='+', default=[2, 3, 4],
        help='K of the InfoPro variants')
    parser.add_argument(
        '--policy', nargs='+', default=['balanced', 'uniform'],
        choices=BaseSplitter.POLICIES,
        help="split policies ('time' times every layer when the model is "
        'built: the memory of the time-balanced cuts)')
    parser.add_argument(
        '--input-size', type=int, nargs=2, metavar=('H', 'W'),
        help='input size (default: the config crop_size, else 224 224)')
    parser.add_argument(
        '--batch-size', type=int,
        help='batch size (default: train_dataloader.batch_size)')
    parser.add_argument('--iters', type=int, default=5,
                        help='timed iterations per method (0: time the '
                        'instrumented iteration instead)')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations before them')
    parser.add_argument('--no-allocator', action='store_true',
                        help='do not profile the allocator')
    parser.add_argument(
        '--head-width', type=float,
        help='width multiplier on every local head (default: the paper '
        'heads)')
    parser.add_argument(
        '--device', default='cuda' if torch.cuda.is_available() else 'cpu',
        help='cpu or cuda (default: cuda when available)')
    parser.add_argument(
        '--threads', type=int,
        help='torch intra-op threads (default: torch\'s choice); on a '
        'shared CPU, 1 avoids stalls of busy-waiting threads')
    parser.add_argument('--out', help='write the report as JSON here')
    parser.add_argument('--plot', help='draw the scatter plot here (png)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    retained = retain_host_memory()  # time steady steps, as training runs
    MMLogger.get_instance('infopro_mm_benchmark', log_level='INFO')
    cfg = load_config(args.config, args.cfg_options)
    size, batch = default_input(cfg)
    input_size = tuple(args.input_size) if args.input_size else size
    batch_size = args.batch_size or batch
    methods = expand_methods(
        [m.strip() for m in args.methods.split(',') if m.strip()],
        args.num_modules, args.policy)
    if args.iters < 0 or args.warmup < 0:
        raise ValueError('--iters and --warmup must be >= 0')
    print_log(
        f'benchmarking {len(methods)} methods of {args.config} at '
        f'{input_size[0]}x{input_size[1]}, batch {batch_size}, on '
        f'{args.device}: {", ".join(m.name for m in methods)}',
        logger='current', level=logging.INFO)
    report = run_benchmark(
        cfg,
        methods,
        input_size,
        batch_size,
        iters=args.iters,
        warmup=args.warmup,
        device=args.device,
        allocator=not args.no_allocator,
        head_width=args.head_width)
    report['host_memory_retained'] = retained
    report['command'] = ' '.join(['python', *sys.argv]) if argv is None \
        else ' '.join(['python', 'tools/analysis/benchmark_memory.py',
                       *argv])
    print(format_table(report))
    print()
    print(format_modules(report))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)
    if args.plot:
        plot(report, args.plot)
    return report


if __name__ == '__main__':
    main()
