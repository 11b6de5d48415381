"""Throughput and per-rank memory of module-parallel InfoPro vs E2E DDP,
E2E GPipe and single-process training, in one run.

Usage::

    python tools/analysis/benchmark_parallel.py [CONFIG] [--batch-size N] \
        [--input-size H W] [--iters N] [--warmup N] [--microbatches M] \
        [--queue-depth D] [--device cpu|cuda] [--out DIR] \
        [--cfg-options k=v ...]

CONFIG (default: ``configs/cifar10/resnet110_infopro-softmax_k2_cifar10.py``)
is an InfoPro config of an mmpretrain classifier; its split gives K and the
cut. Every model is built from it the way ``benchmark_memory.py`` builds
them (same registries, seed 0, so every method starts from the same
weights; E2E is the config's ``architecture``, the model of
``configs/cifar10/resnet110_e2e_cifar10.py``), trained with the config's
optimizer at ``lr=1e-3`` (the learning rate changes neither time nor
memory; the config's 0.8 on random labels only diverges) on one synthetic
batch of ``--batch-size`` images (global batch). K processes are spawned
(gloo on CPU, one thread each; NCCL with one GPU each for ``--device
cuda``), and every process sets ``torch.set_num_threads(1)``. Methods:

- ``e2e_single``: the plain architecture, rank 0 alone (1 process x 1
  thread; the other ranks wait);
- ``infopro_single``: ``InfoPro.train_step`` with
  ``infopro_mm.InfoProOptimWrapper``, rank 0 alone;
- ``e2e_ddp``: the architecture in mmengine's
  ``MMDistributedDataParallel``, ``batch / K`` images per rank;
- ``e2e_gpipe``: the architecture cut where InfoPro cuts it (the same
  splitter), one stage per rank, ``torch.distributed.pipelining``'s
  ``ScheduleGPipe`` over ``--microbatches`` micro-batches of the batch;
- ``infopro_module_parallel``: ``InfoProModuleParallel`` (its
  ``StageLink``\\ s, ``queue_depth`` messages in flight), rank k driven
  through ``train_step`` on step ``t - k`` in round t: the pipeline's
  steady state (the first K-1 rounds fill it and are warm-up).

The methods take turns every round (a barrier before each method's step),
so machine load hits them alike. A method's iteration time in a round is
the slowest rank's step; throughput is the batch over the median of the
timed rounds. Module-parallel runs in lockstep here, so the queue never
smooths one stage's jitter against the other's: a free-running pipeline
can only be as fast or faster.

Memory per rank, measured in one more instrumented round:

- ``saved_peak_bytes``: peak of tensors saved for backward
  (:class:`~infopro_mm.utils.SavedTensorTracker`, exact);
- ``allocator_peak_bytes``: CUDA: ``max_memory_allocated`` minus
  ``memory_allocated`` before the step; CPU: growth of the process's peak
  resident set during the step (``VmHWM`` minus ``VmRSS`` before it, after
  ``malloc_trim(0)`` and a ``VmHWM`` reset through
  ``/proc/self/clear_refs``), which includes the StageLink threads'
  buffers. ``torch.profiler``'s memory events (``benchmark_memory.py``) are
  not used: the profiler crashes the process (SIGSEGV, torch 2.14) when a
  StageLink receiving thread sits in ``dist.recv`` while it records. RSS
  can under-count what glibc reuses from memory freed before the step, so
  it is a lower bound of the step's allocations, not a ranking signal at
  the MiB level;
- ``param_bytes`` (every parameter the rank holds), ``trained_param_bytes``
  (those in its optimizer), ``grad_bytes`` (gradients present when the
  optimizer steps) and ``optimizer_state_bytes`` (state tensors after it).

Prints a markdown table with ratios to single-process InfoPro, E2E DDP and
GPipe of the same run; ``--out DIR`` writes ``benchmark_parallel.json`` and
``benchmark_parallel.png`` there.
"""
import argparse
import copy
import ctypes
import json
import os
import os.path as osp
import socket
import statistics
import sys
import time
from contextlib import ExitStack
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import build_optim_wrapper
from torch import Tensor, nn

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_memory import (Method, ModuleRecorder, build_model,  # noqa
                              infopro_template, load_config,
                              synthetic_batch)

from infopro_mm.models import InfoProModuleParallel  # noqa: E402
from infopro_mm.utils import (SavedTensorTracker, format_mib,  # noqa: E402
                              retain_host_memory)

DEFAULT_CONFIG = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'configs/cifar10/resnet110_infopro-softmax_k2_cifar10.py')
METHODS = ('e2e_single', 'infopro_single', 'e2e_ddp', 'e2e_gpipe',
           'infopro_module_parallel')
REFERENCES = dict(
    infopro_single='x InfoPro 1-proc', e2e_ddp='x E2E DDP',
    e2e_gpipe='x GPipe')
MiB = 2**20


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', nargs='?', default=DEFAULT_CONFIG,
                        help='InfoPro config of a classifier (its split '
                        'gives K and the cut)')
    parser.add_argument('--batch-size', type=int, default=128,
                        help='global batch (DDP: batch / K per rank)')
    parser.add_argument('--input-size', type=int, nargs=2, default=(32, 32),
                        metavar=('H', 'W'))
    parser.add_argument('--iters', type=int, default=10,
                        help='timed rounds')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed rounds before them (>= K-1: they '
                        'fill the pipeline)')
    parser.add_argument('--microbatches', type=int, default=4,
                        help='GPipe micro-batches per batch')
    parser.add_argument('--queue-depth', type=int, default=2,
                        help="module-parallel StageLink depth")
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'],
                        help='cpu (gloo) or cuda (NCCL, one GPU per rank)')
    parser.add_argument('--out', help='directory for benchmark_parallel.'
                        'json and benchmark_parallel.png')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    if args.iters < 1 or args.warmup < 0:
        parser.error('--iters must be >= 1 and --warmup >= 0')
    return args


# ----------------------------------------------------------------------
# models
class ClassifierStage(nn.Module):
    """Consecutive basic layers of a classifier's backbone as one pipeline
    stage; the last stage also runs the neck and the head to the logits.

    Args:
        layers (list[BasicLayer]): The stage's basic layers (a splitter's).
        neck (nn.Module, optional): The classifier's neck (last stage).
        head (nn.Module, optional): The classifier's head (last stage).
    """

    def __init__(self, layers: list, neck: Optional[nn.Module] = None,
                 head: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.layers = layers
        self.blocks = nn.ModuleList(m for layer in layers
                                    for m in layer.modules)
        self.neck = neck
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        if self.head is None:
            return x
        feats = (x, )
        if self.neck is not None:
            feats = self.neck(feats)
        return self.head(feats)


def gpipe_stage(infopro: nn.Module, stage: int) -> ClassifierStage:
    """Stage ``stage`` of the E2E classifier cut at ``infopro``'s cuts."""
    architecture = infopro.architecture
    backbone = architecture.backbone
    splitter = infopro.splitter
    last_layer = len(splitter.basic_layers) - 1
    taps = [i for i, layer in enumerate(splitter.basic_layers)
            if splitter._is_tap(i, layer)]
    if not hasattr(architecture, 'head') or taps != [last_layer]:
        raise TypeError(
            'the GPipe method pipelines classifiers whose backbone returns '
            f'its last layer only; got {type(architecture).__name__} with '
            f'{type(backbone).__name__} outputs at basic layers {taps}')
    layers = splitter.module_layers()[stage]
    if stage < splitter.num_modules - 1:
        return ClassifierStage(layers)
    return ClassifierStage(layers, getattr(architecture, 'neck', None),
                           architecture.head)


class Runner:
    """One method on one rank: untimed ``prepare`` and timed ``step``.

    Args:
        model (nn.Module): What the rank holds (memory accounting).
        optim_wrapper: Its optimizer wrapper.
        step (callable): ``f(data)``, one training step.
        prepare (callable): ``f() -> data`` for the next step.
        record (callable, optional): ``f(tracker)`` returning a context
            manager that records more of the instrumented step.
    """

    def __init__(self, model: nn.Module, optim_wrapper, step: Callable,
                 prepare: Callable, record: Optional[Callable] = None
                 ) -> None:
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.step = step
        self.prepare = prepare
        self.record = record


def _batch_slice(batch: dict, part: slice) -> dict:
    return dict(inputs=batch['inputs'][part],
                data_samples=batch['data_samples'][part])


def build_runners(args, rank: int, world: int, device: str
                  ) -> Dict[str, Optional[Runner]]:
    """Every method's :class:`Runner` on this rank (None: rank idle)."""
    cfg = load_config(args.config, args.cfg_options)
    template, scope = infopro_template(cfg)
    split = cfg.model.get('split') or {}
    size, batch_size = tuple(args.input_size), args.batch_size
    if split.get('boundaries'):
        method, cuts = Method('infopro'), list(split['boundaries'])
    else:
        method = Method('infopro', split.get('num_modules', 2),
                        split.get('policy', 'uniform'))
        cuts = None

    def infopro():
        return build_model(template, scope, method, size, batch_size,
                           device, boundaries=cuts)

    optimizer = dict(cfg.optim_wrapper.optimizer, lr=1e-3)

    def optim(model, kind='OptimWrapper'):
        return build_optim_wrapper(model, dict(type=kind, optimizer=optimizer))

    model = infopro()
    stages = model.splitter.num_modules
    if stages != world:
        raise ValueError(f'{world} processes for K={stages} local modules: '
                         'run K processes')
    batch = synthetic_batch(model, batch_size, size)
    runners: Dict[str, Optional[Runner]] = dict.fromkeys(METHODS)
    whole = lambda: copy.deepcopy(batch)  # noqa: E731 (samples get edited)

    if rank == 0:
        e2e = build_model(template, scope, Method('e2e'), size, batch_size,
                          device).architecture
        e2e_optim = optim(e2e)
        runners['e2e_single'] = Runner(
            e2e, e2e_optim, lambda d: e2e.train_step(d, e2e_optim), whole)
        single_optim = optim(model, 'infopro_mm.InfoProOptimWrapper')
        runners['infopro_single'] = Runner(
            model, single_optim, lambda d: model.train_step(d, single_optim),
            whole, lambda tracker: ModuleRecorder(model, single_optim,
                                                  tracker).record())

    ddp_model = build_model(template, scope, Method('e2e'), size,
                            batch_size, device).architecture
    ddp = MMDistributedDataParallel(
        module=ddp_model, broadcast_buffers=False,
        device_ids=[torch.cuda.current_device()] if device == 'cuda' else
        None)
    ddp_optim = optim(ddp_model)
    share = batch_size // world
    shard = _batch_slice(batch, slice(rank * share, (rank + 1) * share))
    runners['e2e_ddp'] = Runner(ddp_model, ddp_optim,
                                lambda d: ddp.train_step(d, ddp_optim),
                                lambda: copy.deepcopy(shard))
    runners['e2e_gpipe'] = gpipe_runner(infopro(), rank, world, device,
                                        batch, args.microbatches, optim)
    runners['infopro_module_parallel'] = module_parallel_runner(
        infopro(), rank, batch, args.queue_depth, optim)
    return runners


def gpipe_runner(infopro: nn.Module, rank: int, world: int, device: str,
                 batch: dict, microbatches: int, optim) -> Runner:
    """GPipe E2E on the InfoPro cut: this rank's stage and schedule."""
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe
    stage_module = gpipe_stage(infopro, rank)
    preprocessor = infopro.data_preprocessor
    loss_module = infopro.architecture.head.loss_module
    del infopro  # the rank keeps its stage only
    stage_optim = optim(stage_module)
    stage = PipelineStage(stage_module, rank, world, torch.device(device))
    schedule = ScheduleGPipe(
        stage, microbatches,
        loss_fn=lambda logits, target: loss_module(logits, target))
    labels = torch.cat([s.gt_label for s in batch['data_samples']])

    def step(data):
        if rank == 0:
            schedule.step(preprocessor(data, True)['inputs'])
        elif rank == world - 1:
            schedule.step(target=data.to(device), losses=[])
        else:
            schedule.step()
        stage_optim.step()
        stage_optim.zero_grad()

    return Runner(stage_module, stage_optim, step,
                  lambda: copy.deepcopy(batch) if rank == 0 else labels)


def module_parallel_runner(infopro: nn.Module, rank: int, batch: dict,
                           queue_depth: int, optim) -> Runner:
    """InfoProModuleParallel; rank k runs step t - k in round t."""
    wrapper = InfoProModuleParallel(infopro, queue_depth=queue_depth)
    stage_optim = optim(infopro, 'infopro_mm.InfoProOptimWrapper')
    wrapper.restrict_optimizer(stage_optim)

    def prepare():
        return copy.deepcopy(batch) if rank == 0 else None

    runner = Runner(infopro, stage_optim,
                    lambda d: wrapper.train_step(d, stage_optim), prepare)
    runner.wrapper = wrapper
    return runner


# ----------------------------------------------------------------------
# measuring
def _sync(device: str) -> None:
    if device == 'cuda':
        torch.cuda.synchronize()


def _bytes(tensors) -> int:
    unique = {id(t): t for t in tensors}
    return sum(t.numel() * t.element_size() for t in unique.values())


def _status_bytes(field: str) -> Optional[int]:
    """A ``kB`` field of ``/proc/self/status`` in bytes (None off Linux)."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> Optional[int]:
    """Give freed heap memory back (``malloc_trim``), restart the peak RSS
    (``VmHWM``) from the current RSS and return that RSS; None where Linux
    does not allow it."""
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
    except OSError:
        return None
    return _status_bytes('VmRSS')


def instrumented_step(runner: Runner, device: str) -> dict:
    """One step under the trackers: this rank's memory figures."""
    model, optimizer = runner.model, runner.optim_wrapper.optimizer
    data = runner.prepare()
    grads = {}

    def count_grads(*_):
        grads['bytes'] = _bytes(p.grad for p in model.parameters()
                                if p.grad is not None)

    handle = optimizer.register_step_pre_hook(count_grads)
    with ExitStack() as stack:
        tracker = stack.enter_context(SavedTensorTracker(ignore=model))
        recorder = None
        if runner.record is not None:
            recorder = stack.enter_context(runner.record(tracker))
        _sync(device)
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats()
            start = torch.cuda.memory_allocated()
        else:
            start = _reset_peak_rss()
        runner.step(data)
        _sync(device)
    handle.remove()
    result = dict(saved_peak_bytes=tracker.peak_bytes)
    if device == 'cuda':
        result['allocator_peak_bytes'] = (
            torch.cuda.max_memory_allocated() - start)
    else:
        peak = _status_bytes('VmHWM')
        result['allocator_peak_bytes'] = (
            None if start is None or peak is None else peak - start)
    if recorder is not None:  # it restarts the peak at every module
        result['module_saved_peak_bytes'] = [
            m['peak_bytes'] for m in recorder.modules]
        result['saved_peak_bytes'] = max(result['module_saved_peak_bytes'])
    trained = [p for g in optimizer.param_groups for p in g['params']]
    result.update(
        param_bytes=_bytes(model.parameters()),
        trained_param_bytes=_bytes(trained),
        grad_bytes=grads.get('bytes', 0),
        optimizer_state_bytes=_bytes(
            v for s in optimizer.state.values() for v in s.values()
            if isinstance(v, Tensor) and v.dim() > 0))
    return result


def worker(rank: int, world: int, port: int, args, results) -> None:
    torch.set_num_threads(1)
    retained = retain_host_memory()  # steady steps, as in training
    device = args.device
    if device == 'cuda':
        torch.cuda.set_device(rank)
        torch.backends.cudnn.benchmark = False
    dist.init_process_group(
        'nccl' if device == 'cuda' else 'gloo',
        init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    runners = build_runners(args, rank, world, device)
    parallel = runners['infopro_module_parallel']
    rounds = args.warmup + args.iters
    times: Dict[str, List[float]] = {name: [] for name in METHODS}
    memory: Dict[str, Optional[dict]] = {}
    for it in range(rounds + 1):  # the last round is instrumented
        for name, runner in runners.items():
            # module-parallel: rank k idles in the first k rounds (fill)
            idle = runner is None or (runner is parallel and it < rank)
            dist.barrier()
            if it == rounds:
                memory[name] = None if idle else instrumented_step(
                    runner, device)
                continue
            data = None if idle else runner.prepare()
            _sync(device)
            tic = time.perf_counter()
            if not idle:
                runner.step(data)
            _sync(device)
            times[name].append(time.perf_counter() - tic)
        if rank == 0 and it < rounds:
            print_log(f'round {it + 1}/{rounds}'
                      f'{" (warm-up)" if it < args.warmup else ""}: ' +
                      ', '.join(f'{n} {t[-1]:.3f} s'
                                for n, t in times.items() if t),
                      logger='current')
    for _ in range(rank):  # drain: rank k is k steps behind rank 0
        parallel.step(parallel.prepare())
    parallel.wrapper.close()
    gathered = [None] * world
    dist.all_gather_object(gathered, dict(times=times, memory=memory))
    if rank == 0:
        model = runners['infopro_single'].model
        results.update(
            host_memory_retained=retained,
            ranks=gathered,
            cuts=model.splitter.boundaries,
            module_layers=[[m[0].name, m[-1].name]
                           for m in model.splitter.module_layers()])
    dist.barrier()
    dist.destroy_process_group()


# ----------------------------------------------------------------------
# reporting
def summarize(args, raw: dict, world: int) -> dict:
    """Rows (one per method) and the issue's targets from the ranks'
    raw times and memory."""
    ranks = raw['ranks']
    rows = []
    for name in METHODS:
        per_round = [max(r['times'][name][i] for r in ranks)
                     for i in range(args.warmup, args.warmup + args.iters)]
        median = statistics.median(per_round)
        single = name.endswith('_single')
        rows.append(dict(
            method=name,
            processes=1 if single else world,
            threads_per_process=1,
            images_per_iter=args.batch_size,
            median_iter_s=round(median, 4),
            images_per_s=round(args.batch_size / median, 2),
            iter_times_s=[round(t, 4) for t in per_round],
            # each rank's own step: the slowest sets a pipeline's pace
            rank_median_step_s=[
                round(statistics.median(
                    r['times'][name][args.warmup:]), 4) for r in ranks
            ][:1 if single else None],
            ranks=[dict(rank=k, **r['memory'][name])
                   for k, r in enumerate(ranks)
                   if r['memory'][name] is not None]))
    by_name = {row['method']: row for row in rows}
    for row in rows:
        row['ratios'] = {
            ref: round(row['images_per_s'] / by_name[ref]['images_per_s'], 3)
            for ref in REFERENCES
        }
    parallel, ddp = by_name['infopro_module_parallel'], by_name['e2e_ddp']
    single = by_name['infopro_single']['ranks'][0]
    largest_module = max(single['module_saved_peak_bytes'])
    owned = [r['trained_param_bytes'] + r['grad_bytes'] +
             r['optimizer_state_bytes'] for r in parallel['ranks']]
    replica = [r['trained_param_bytes'] + r['grad_bytes'] +
               r['optimizer_state_bytes'] for r in ddp['ranks']]
    ratios = parallel['ratios']
    targets = dict(
        vs_infopro_single=dict(measured=ratios['infopro_single'],
                               target=1.7),
        vs_e2e_ddp=dict(measured=ratios['e2e_ddp'], target=0.95),
        vs_gpipe=dict(measured=ratios['e2e_gpipe'], target=1.3),
        param_grad_state_bytes=dict(
            module_parallel_per_rank=owned, ddp_per_rank=replica,
            module_parallel_param_bytes_held=[
                r['param_bytes'] for r in parallel['ranks']]),
        saved_peak_bytes=dict(
            module_parallel_per_rank=[
                r['saved_peak_bytes'] for r in parallel['ranks']],
            single_process_per_module=single['module_saved_peak_bytes'],
            largest_module=largest_module))
    for key in ('vs_infopro_single', 'vs_e2e_ddp', 'vs_gpipe'):
        targets[key]['met'] = targets[key]['measured'] >= targets[key][
            'target']
    targets['saved_peak_bytes']['met'] = all(
        b <= largest_module
        for b in targets['saved_peak_bytes']['module_parallel_per_rank'])
    return dict(rows=rows, targets=targets)


def _mibs(values: Sequence[Optional[int]]) -> str:
    return ' / '.join(format_mib(v) for v in values)


def format_table(report: dict) -> str:
    """The markdown table: throughput, ratios and per-rank memory."""
    header = ['method', 'processes x threads', 'images/s',
              *REFERENCES.values(), 'step s (per rank)',
              'saved peak MiB (per rank)',
              'allocator peak MiB' if report['device'] == 'cuda' else
              'peak RSS growth MiB', 'param + grad + state MiB',
              'params held MiB']
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in report['results']:
        ranks = row['ranks']
        lines.append('| ' + ' | '.join([
            row['method'], f"{row['processes']} x 1",
            f"{row['images_per_s']:.1f}",
            *(f"{row['ratios'][ref]:.2f}" for ref in REFERENCES),
            ' / '.join(f'{t:.2f}' for t in row['rank_median_step_s']),
            _mibs([r['saved_peak_bytes'] for r in ranks]),
            _mibs([r['allocator_peak_bytes'] for r in ranks]),
            _mibs([r['trained_param_bytes'] + r['grad_bytes'] +
                  r['optimizer_state_bytes'] for r in ranks]),
            _mibs([r['param_bytes'] for r in ranks])]) + ' |')
    return '\n'.join(lines)


def format_targets(targets: dict) -> str:
    """The issue's targets, measured, one line each."""
    lines = []
    for key, label in (('vs_infopro_single', 'single-process InfoPro'),
                       ('vs_e2e_ddp', 'E2E DDP'), ('vs_gpipe', 'GPipe')):
        t = targets[key]
        lines.append(f"module-parallel / {label}: {t['measured']:.2f}x "
                     f"(target >= {t['target']}x: "
                     f"{'met' if t['met'] else 'not met'})")
    pgs = targets['param_grad_state_bytes']
    lines.append(
        'param + grad + optimizer state per rank: module-parallel '
        f"{_mibs(pgs['module_parallel_per_rank'])} MiB vs DDP replica "
        f"{_mibs(pgs['ddp_per_rank'])} MiB (module-parallel ranks hold "
        f"{_mibs(pgs['module_parallel_param_bytes_held'])} MiB of parameters)")
    saved = targets['saved_peak_bytes']
    lines.append(
        'saved activations per rank: module-parallel '
        f"{_mibs(saved['module_parallel_per_rank'])} MiB vs single-process "
        f"InfoPro modules {_mibs(saved['single_process_per_module'])} MiB "
        f"(<= largest module: {'met' if saved['met'] else 'not met'})")
    return '\n'.join(lines)


def plot(report: dict, path: str) -> None:
    """Throughput per method (left) and memory per rank (right)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = report['results']
    names = [r['method'] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    left.barh(names, [r['images_per_s'] for r in rows], color='tab:blue')
    for y, r in enumerate(rows):
        left.annotate(f"{r['images_per_s']:.1f}", (r['images_per_s'], y),
                      xytext=(3, -3), textcoords='offset points', fontsize=8)
    left.invert_yaxis()
    left.set_xlabel('images/s (median round)')
    left.grid(axis='x', alpha=0.3)
    figures = (('saved_peak_bytes', 'saved activations'),
               ('allocator_peak_bytes', 'allocator peak' if report[
                   'device'] == 'cuda' else 'peak RSS growth'),
               ('state', 'param + grad + state'))
    width = 0.8 / len(figures)
    labels, positions = [], []
    for i, r in enumerate(rows):
        for k, rank in enumerate(r['ranks']):
            labels.append(f"{r['method']} r{rank['rank']}")
            positions.append(len(labels) - 1)
    for j, (key, label) in enumerate(figures):
        values = []
        for r in rows:
            for rank in r['ranks']:
                values.append((rank['trained_param_bytes'] +
                               rank['grad_bytes'] +
                               rank['optimizer_state_bytes']
                               if key == 'state' else rank[key] or 0) / MiB)
        right.barh([p + (j - 1) * width for p in positions], values,
                   height=width, label=label)
    right.set_yticks(positions)
    right.set_yticklabels(labels, fontsize=7)
    right.invert_yaxis()
    right.set_xlabel('MiB per rank')
    right.legend(fontsize=8)
    right.grid(axis='x', alpha=0.3)
    fig.suptitle(
        f"{osp.basename(report['config'])}: K={report['num_modules']} "
        f"(cut after {', '.join(report['cuts'])}), batch "
        f"{report['batch_size']}, {report['device']}, 1 thread per process")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: no CUDA device is available')
    cfg = load_config(args.config, args.cfg_options)
    split = cfg.model.get('split') or {}
    world = (len(split['boundaries']) + 1
             if split.get('boundaries') else split.get('num_modules', 2))
    if args.device == 'cuda' and torch.cuda.device_count() < world:
        raise SystemExit(f'--device cuda: K={world} processes need {world} '
                         f'GPUs, {torch.cuda.device_count()} visible')
    if args.warmup < world - 1:
        raise SystemExit(f'--warmup must be >= K-1 = {world - 1}: the first '
                         'K-1 rounds fill the module-parallel pipeline')
    if args.batch_size % world or args.batch_size % args.microbatches:
        raise SystemExit(f'--batch-size {args.batch_size} must divide by K='
                         f'{world} (DDP) and by --microbatches '
                         f'{args.microbatches} (GPipe)')
    load_before = os.getloadavg()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    tic = time.perf_counter()
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(world, port, args, results), nprocs=world,
                 join=True)
        raw = dict(results)
    summary = summarize(args, raw, world)
    report = dict(
        command=' '.join(['python', 'tools/analysis/benchmark_parallel.py',
                          *(sys.argv[1:] if argv is None else argv)]),
        config=args.config, num_modules=world, cuts=raw['cuts'],
        module_layers=raw['module_layers'], batch_size=args.batch_size,
        input_size=list(args.input_size), iters=args.iters,
        warmup=args.warmup, microbatches=args.microbatches,
        queue_depth=args.queue_depth, device=args.device,
        host_memory_retained=raw['host_memory_retained'],
        device_name=torch.cuda.get_device_name() if args.device == 'cuda'
        else 'cpu', threads_per_process=1, torch=torch.__version__,
        optimizer='the config optimizer with lr=1e-3',
        load_average_before=[round(v, 2) for v in load_before],
        load_average_after=[round(v, 2) for v in os.getloadavg()],
        wall_s=round(time.perf_counter() - tic, 1),
        results=summary['rows'], targets=summary['targets'])
    print(f"\nK={world} (cut after {', '.join(raw['cuts'])}), batch "
          f"{args.batch_size}, input {tuple(args.input_size)}, "
          f"{args.device}, 1 thread per process, GPipe "
          f"{args.microbatches} micro-batches, median of {args.iters} "
          f'rounds; per-rank columns: rank 0 / rank 1 / ...')
    print(format_table(report))
    print(format_targets(report['targets']))
    print(f"load average before {report['load_average_before']}, after "
          f"{report['load_average_after']}")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(osp.join(args.out, 'benchmark_parallel.json'), 'w') as f:
            json.dump(report, f, indent=2)
        plot(report, osp.join(args.out, 'benchmark_parallel.png'))
    return report


if __name__ == '__main__':
    main()
