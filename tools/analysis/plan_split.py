"""Will it fit? The training memory of every K, before any training step.

Usage::

    python tools/analysis/plan_split.py CONFIG --input-size H W \
        --batch-size N [--num-modules K | --max-memory 10GiB] \
        [--optimizer sgd|adamw|...] [--max-k 6] [--out DIR] [--verify] \
        [--threads N] [--policy balanced|time [--measure-time]
        [--warmup 2] [--repeats 5] [--device cpu|cuda] [--clock wall|cpu]]
        [--cfg-options k=v ...]

CONFIG is an InfoPro config or a plain mmseg / mmpretrain config (the
paper's local heads are used then, as in benchmark_memory.py). The model is
built once and profiled once (:meth:`~infopro_mm.models.InfoPro.
profile_memory`, the profile the balanced planner uses when training
starts); for K = 1..``--max-k`` the planner's balanced cuts give:

- the cuts, as names of the last basic layer of each local module;
- every module's activations (tensors saved for backward) and the largest;
- the fixed costs: weights, gradients and optimizer state of the
  architecture and of the K-1 sets of local heads;
- the estimated peak (largest module + fixed costs), both as a ratio to
  end-to-end training (K = 1);
- the extra FLOPs of the local heads (forward and backward) per step.

``--max-memory`` picks K as ``split=dict(max_memory=...)`` does in
training (the smallest K whose peak fits) and says so, or fails with the
smallest achievable peak; ``--num-modules`` marks a K. The optimizer is the
config's ``optim_wrapper.optimizer`` unless ``--optimizer`` names one
(``sgd`` is SGD without momentum). The table is printed and written with
the profile to ``DIR/plan_split.json``, the peak against K to
``DIR/plan_split.png`` (with the budget line).

``--verify`` (CUDA only; skipped with a message otherwise) runs one
training step per chosen K (every K of the table when none is chosen) after
one warm-up step and prints the estimate beside
``torch.cuda.max_memory_allocated``.

``--policy time`` plans for a module-parallel pipeline as
``split=dict(policy='time', ...)`` does: the layers are also timed
(:meth:`~infopro_mm.models.InfoPro.profile_time`, forward + backward at the
training input and batch on ``--device``) and every K gets the cuts that
minimise the slowest stage; the table gives every stage's predicted time
beside its memory, the slowest stage, the throughput bound it implies and
the slowest stage of the memory-balanced cuts. ``--measure-time`` (with
``--num-modules K``) then runs every stage of K's time-balanced split, of
its memory-balanced split and of the config's own split (when it has K
modules) the way a module-parallel rank does (its module's forward, local
losses or task loss, backward; no optimizer step, no traffic) and prints
the measured median (and range) beside the prediction. ``--clock cpu``
times with the process's CPU time instead of wall time: on a CPU shared
with other jobs it is the steadier measure, and with ``--threads 1`` it is
the wall time an unshared core would take.
"""
import argparse
import json
import statistics
import time
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.config import DictAction
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_memory import (Method, build_model, default_input,  # noqa
                              infopro_template, load_config, synthetic_batch)

from infopro_mm.models import (MemoryBudgetError, MemoryProfile,  # noqa: E402
                               TimeProfile, plan_balanced_cuts,
                               plan_within_budget)
from infopro_mm.utils import (format_mib, format_size,  # noqa: E402
                              optimizer_of, optimizer_states, parse_size,
                              repeat_seconds, retain_host_memory)


def memory_cuts(profile: MemoryProfile, num_modules: int) -> List[int]:
    """The memory-balanced (InfoPro*) cuts into ``num_modules``."""
    return plan_balanced_cuts(profile['layer_bytes'], profile['input_bytes'],
                              profile['head_bytes'], profile['tail_bytes'],
                              num_modules)[0]


def time_cuts(times: TimeProfile, num_modules: int) -> List[int]:
    """The time-balanced cuts into ``num_modules`` (slowest stage least)."""
    return plan_balanced_cuts(times['layer_seconds'], times['input_seconds'],
                              times['head_seconds'], times['tail_seconds'],
                              num_modules)[0]


def plan_rows(profile: MemoryProfile, states: int, max_k: int,
              times: Optional[TimeProfile] = None) -> List[dict]:
    """The balanced split of every K = 1..``max_k`` and its estimates.

    Args:
        profile (MemoryProfile): From ``InfoPro.profile_memory`` with FLOPs.
        states (int): Optimizer state tensors per parameter.
        max_k (int): Largest K (at most the number of basic layers).
        times (TimeProfile, optional): From ``InfoPro.profile_time``: the
            cuts are then time-balanced and the rows also hold every
            stage's predicted time (``stage_seconds``), the slowest, the
            throughput bound (``images_per_second``) and the slowest stage
            of the memory-balanced cuts (``memory_cuts_slowest_seconds``).
            Defaults to None (memory-balanced cuts).

    Returns:
        list[dict]: One row per K.
    """
    names = profile['names']
    rows = []
    for k in range(1, min(max_k, len(names)) + 1):
        cuts = memory_cuts(profile, k) if times is None else time_cuts(
            times, k)
        modules = profile.module_bytes(cuts)
        row = dict(
            num_modules=k,
            cuts=cuts,
            boundaries=[names[c] for c in cuts],
            module_bytes=modules,
            activation_bytes=max(modules),
            fixed_bytes=profile.fixed_bytes(cuts, states),
            peak_bytes=profile.peak_bytes(cuts, states),
            head_flops=sum(profile['head_flops'][c] for c in cuts))
        if times is not None:
            stages = times.module_seconds(cuts)
            row.update(
                stage_seconds=stages,
                slowest_seconds=max(stages),
                images_per_second=times.images_per_second(cuts),
                memory_cuts_slowest_seconds=max(
                    times.module_seconds(memory_cuts(profile, k))))
        rows.append(row)
    e2e = rows[0]
    for row in rows:
        row['activation_ratio'] = row['activation_bytes'] / e2e[
            'activation_bytes']
        row['peak_ratio'] = row['peak_bytes'] / e2e['peak_bytes']
        row['head_flops_ratio'] = row['head_flops'] / profile['flops']
    return rows


def choose(profile: MemoryProfile, states: int, budget: Optional[int],
           num_modules: Optional[int]) -> Tuple[Optional[int], str]:
    """The K that ``--max-memory`` or ``--num-modules`` asks for.

    Returns:
        tuple[int | None, str]: K (None when the budget cannot be met) and
        a line that says why.
    """
    if num_modules is not None:
        if not 1 <= num_modules <= len(profile['names']):
            raise ValueError(
                f'--num-modules {num_modules} is out of range: the backbone '
                f'has {len(profile["names"])} basic layers')
        return num_modules, f'K={num_modules} (--num-modules)'
    if budget is None:
        return None, ''
    try:
        cuts, _, peak = plan_within_budget(
            profile['layer_bytes'], profile['input_bytes'],
            profile['head_bytes'], profile['tail_bytes'], budget,
            profile.fixed_bytes((), states),
            profile.head_fixed_bytes(states))
    except MemoryBudgetError as exc:
        return None, str(exc)
    return len(cuts) + 1, (
        f'max_memory={format_size(budget)}: K={len(cuts) + 1} is the '
        f'smallest K that fits (estimated peak {format_size(peak)}); '
        f"split=dict(max_memory='{format_size(budget).replace(' ', '')}', "
        '...) chooses it in training')


def _gflops(value: float) -> str:
    return f'{value / 1e9:,.1f}' if value >= 1e10 else f'{value / 1e9:.3f}'


def _ms(seconds: Sequence[float]) -> str:
    return ' / '.join(f'{1e3 * t:,.1f}' for t in seconds)


def format_table(rows: Sequence[dict], chosen: Optional[int] = None) -> str:
    """A markdown table of :func:`plan_rows` (``*`` marks ``chosen``);
    rows with stage times get their columns after the memory."""
    timed = 'stage_seconds' in rows[0]
    header = ('| K | cuts after | per-module activations MiB | largest MiB '
              '| x E2E | fixed MiB | peak MiB | x E2E | local heads GFLOPs '
              '| x E2E FLOPs |')
    columns = 10
    if timed:
        header += (' per-stage time ms | slowest ms | images/s bound '
                   '| slowest ms, memory-balanced cuts |')
        columns += 4
    lines = [header, '|' + '---|' * columns]
    for row in rows:
        mark = '*' if row['num_modules'] == chosen else ''
        line = (
            f'| {row["num_modules"]}{mark} | '
            f'{", ".join(row["boundaries"]) or "-"} | '
            f'{" / ".join(format_mib(b) for b in row["module_bytes"])} | '
            f'{format_mib(row["activation_bytes"])} | '
            f'{row["activation_ratio"]:.3f} | '
            f'{format_mib(row["fixed_bytes"])} | '
            f'{format_mib(row["peak_bytes"])} | {row["peak_ratio"]:.3f} | '
            f'{_gflops(row["head_flops"])} | '
            f'+{100 * row["head_flops_ratio"]:.1f} % |')
        if timed:
            line += (f' {_ms(row["stage_seconds"])} | '
                     f'{_ms([row["slowest_seconds"]])} | '
                     f'{row["images_per_second"]:,.1f} | '
                     f'{_ms([row["memory_cuts_slowest_seconds"]])} |')
        lines.append(line)
    return '\n'.join(lines)


CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)


def measure_stages(model: torch.nn.Module, batch: dict, warmup: int,
                   repeats: int,
                   clock=time.perf_counter) -> List[List[float]]:
    """Wall time of every stage of ``model``'s split, run as a
    module-parallel rank runs it (forward of its module, its local losses
    or the task loss, backward), without the optimizer step and traffic.

    Args:
        model (nn.Module): An InfoPro model with the split to measure.
        batch (dict): A raw batch (:func:`synthetic_batch`).
        warmup (int): Untimed runs per stage.
        repeats (int): Timed runs per stage.
        clock (callable): Seconds now. Defaults to wall time.

    Returns:
        list[list[float]]: Per stage, the seconds of every timed run.
    """
    device = next(model.parameters()).device
    data = model.data_preprocessor(batch, True)
    image, samples = data['inputs'], data['data_samples']
    local = model._local_batch(image, samples)
    splitter = model.splitter
    num = splitter.num_modules
    params = list(model.parameters())
    # the input and earlier backbone outputs of every stage
    inputs, x, outs = [], image, ()
    with torch.no_grad():
        for k in range(num - 1):
            inputs.append((x, outs))
            ends = {}
            outs = splitter.forward(
                x,
                modules=range(k, k + 1),
                outs=outs,
                on_module_output=lambda _, state: ends.update(x=state))
            x = ends['x']
    inputs.append((x, outs))

    def stage_run(k: int):

        def run() -> None:
            x, outs = inputs[k]
            if k < num - 1:
                ends = {}
                splitter.forward(
                    x,
                    on_module_end=lambda m, feat: ends.update(
                        loss=sum(model.local_losses(m, feat,
                                                    local).values())),
                    modules=range(k, k + 1),
                    outs=outs)
                loss = ends['loss']
            else:
                with model._staged_backbone(
                        modules=range(k, k + 1), outs=outs):
                    losses = model.architecture.loss(x, samples)
                loss = model.parse_losses(losses)[0]
            loss.backward()
            for p in params:
                p.grad = None

        return run

    return [
        repeat_seconds(stage_run(k), warmup, repeats, device, clock)
        for k in range(num)
    ]


def measure_splits(template: dict, scope: Optional[str],
                   splits: Sequence[Tuple[str, List[str]]],
                   times: TimeProfile, input_size: Tuple[int, int],
                   batch_size: int, device: torch.device, warmup: int,
                   repeats: int, clock=time.perf_counter) -> List[dict]:
    """Predicted against measured stage times of named splits.

    Args:
        template (dict): From :func:`infopro_template`.
        scope (str, optional): Default scope to build in.
        splits (Sequence[tuple[str, list[str]]]): Name and boundaries.
        times (TimeProfile): The profile the predictions come from.
        input_size (tuple[int, int]): Training input (H, W).
        batch_size (int): Batch size of one stage.
        device (torch.device): Where to run.
        warmup (int): Untimed runs per stage.
        repeats (int): Timed runs per stage.
        clock (callable): Seconds now. Defaults to wall time.

    Returns:
        list[dict]: Per split its boundaries, the predicted and the
        measured (median, min, max) seconds of every stage and the
        relative error of the median.
    """
    names = times['names']
    results = []
    for label, boundaries in splits:
        model = build_model(template, scope, Method('infopro'), input_size,
                            batch_size, device, boundaries=boundaries)
        runs = measure_stages(
            model, synthetic_batch(model, batch_size, input_size), warmup,
            repeats, clock)
        predicted = times.module_seconds(
            [names.index(b) for b in boundaries])
        median = [statistics.median(r) for r in runs]
        results.append(
            dict(
                split=label,
                boundaries=list(boundaries),
                predicted_seconds=predicted,
                measured_seconds=median,
                measured_min_seconds=[min(r) for r in runs],
                measured_max_seconds=[max(r) for r in runs],
                relative_error=[m / p - 1 for m, p in zip(median, predicted)]))
        del model
    return results


def format_measured(results: Sequence[dict]) -> str:
    """A markdown table of :func:`measure_splits`."""
    lines = [
        '| split | cuts after | predicted ms per stage | measured ms '
        '(median [min-max]) | error | slowest predicted / measured ms |',
        '|---|---|---|---|---|---|'
    ]
    for r in results:
        measured = ' / '.join(
            f'{1e3 * m:,.1f} [{1e3 * lo:,.1f}-{1e3 * hi:,.1f}]'
            for m, lo, hi in zip(r['measured_seconds'],
                                 r['measured_min_seconds'],
                                 r['measured_max_seconds']))
        error = ' / '.join(f'{100 * e:+.1f} %' for e in r['relative_error'])
        lines.append(
            f'| {r["split"]} | {", ".join(r["boundaries"])} | '
            f'{_ms(r["predicted_seconds"])} | {measured} | {error} | '
            f'{_ms([max(r["predicted_seconds"])])} / '
            f'{_ms([max(r["measured_seconds"])])} |')
    return '\n'.join(lines)


def plot(report: dict, path: str) -> None:
    """Estimated peak and largest module against K, with the budget."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = report['rows']
    ks = [r['num_modules'] for r in rows]
    gib = 2**30
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ks, [r['peak_bytes'] / gib for r in rows], 'o-',
            color='tab:blue', label='estimated peak (activations + fixed)')
    ax.plot(ks, [r['activation_bytes'] / gib for r in rows], 's--',
            color='tab:orange', label='largest module (activations)')
    ax.plot(ks, [r['fixed_bytes'] / gib for r in rows], ':',
            color='tab:gray', label='weights, grads, optimizer state')
    if report.get('max_memory'):
        ax.axhline(report['max_memory'] / gib, color='tab:red', lw=1.2,
                   label=f'budget {format_size(report["max_memory"])}')
    chosen = report.get('chosen_num_modules')
    if chosen in ks:
        row = rows[ks.index(chosen)]
        ax.plot([chosen], [row['peak_bytes'] / gib], 'o', ms=12,
                mfc='none', mec='tab:red', mew=2, label=f'chosen K={chosen}')
    ax.set_xlabel('K (local modules)')
    ax.set_ylabel('training memory (GiB)')
    ax.set_xticks(ks)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    size = 'x'.join(str(s) for s in report['input_size'])
    ax.set_title(f'{osp.basename(report["config"])}\n{size}, batch '
                 f'{report["batch_size"]}, {report["optimizer_name"]}',
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def optimizer_cfg(cfg, name: Optional[str]) -> dict:
    """The optimizer config whose state is counted (and ``--verify``
    trains with): ``--optimizer`` or the config's."""
    if name is not None:
        types = {t.lower(): t for t in dir(torch.optim)}
        return dict(type=types.get(name.lower(), name), lr=1e-4)
    optimizer = optimizer_of(cfg.get('optim_wrapper', None))
    if optimizer is None:
        raise ValueError('the config has no optim_wrapper.optimizer: give '
                         '--optimizer (e.g. sgd or adamw)')
    return optimizer


def verify(template: dict, scope: Optional[str], rows: Sequence[dict],
           ks: Sequence[int], optimizer: dict, input_size: Tuple[int, int],
           batch_size: int) -> Optional[List[dict]]:
    """One CUDA training step per K in ``ks``: estimate vs measured peak.

    Returns:
        list[dict] | None: Per K the estimate and
        ``torch.cuda.max_memory_allocated``; None without CUDA.
    """
    if not torch.cuda.is_available():
        print('[plan_split] --verify needs a CUDA device; none is present, '
              'so no step was run (the estimates above stand unverified)')
        return None
    device = torch.device('cuda')
    results = []
    by_k = {r['num_modules']: r for r in rows}
    for k in ks:
        model = build_model(template, scope, Method('infopro', k),
                            input_size, batch_size, device,
                            boundaries=by_k[k]['boundaries'])
        wrapper = build_optim_wrapper(
            model,
            dict(type='infopro_mm.InfoProOptimWrapper', optimizer=optimizer))
        # the warm-up step creates the optimizer state
        model.train_step(
            synthetic_batch(model, batch_size, input_size), wrapper)
        batch = synthetic_batch(model, batch_size, input_size, seed=1)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        model.train_step(batch, wrapper)
        torch.cuda.synchronize()
        measured = torch.cuda.max_memory_allocated()
        estimate = by_k[k]['peak_bytes']
        results.append(
            dict(num_modules=k, estimate_bytes=estimate,
                 cuda_max_allocated_bytes=measured,
                 ratio=measured / estimate))
        print(f'[plan_split] verify K={k}: estimated {format_size(estimate)}'
              f', torch.cuda.max_memory_allocated {format_size(measured)} '
              f'({measured / estimate:.3f} x the estimate)')
        del model, wrapper, batch
        torch.cuda.empty_cache()
    return results


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Training memory of every K, before training')
    parser.add_argument('config', help='InfoPro or downstream config file')
    parser.add_argument(
        '--input-size', type=int, nargs=2, metavar=('H', 'W'),
        help='training input (default: the config crop_size, else 224 224)')
    parser.add_argument(
        '--batch-size', type=int,
        help='batch size per GPU (default: train_dataloader.batch_size)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument('--num-modules', type=int, help='mark this K')
    group.add_argument(
        '--max-memory', help="choose the smallest K that fits, e.g. '10GiB'")
    parser.add_argument(
        '--optimizer',
        help='optimizer type whose state is counted, e.g. sgd (no '
        "momentum) or adamw (default: the config's)")
    parser.add_argument('--max-k', type=int, default=6,
                        help='largest K of the table (default 6)')
    parser.add_argument('--out', default='work_dirs/plan_split',
                        help='where plan_split.json and plan_split.png go')
    parser.add_argument('--verify', action='store_true',
                        help='run one CUDA step per chosen K and compare')
    parser.add_argument('--threads', type=int,
                        help='torch intra-op threads (default: torch\'s)')
    parser.add_argument(
        '--policy', choices=['balanced', 'time'], default='balanced',
        help="cuts of every K: 'balanced' memory (InfoPro*) or 'time' "
        '(module-parallel stages; also prints per-stage times)')
    parser.add_argument(
        '--measure-time', action='store_true',
        help='with --policy time and --num-modules: run the stages of the '
        'time-balanced, memory-balanced and config splits, compare')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed runs per timing (default 2)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs per timing, median (default 5)')
    parser.add_argument('--device', default='cpu',
                        help='where --policy time times (default cpu)')
    parser.add_argument(
        '--clock', choices=sorted(CLOCKS), default='wall',
        help='wall time (default) or the process CPU time (steadier on a '
        'shared CPU; a wall-time proxy with --threads 1 only)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.measure_time and (args.policy != 'time'
                              or args.num_modules is None):
        raise SystemExit('--measure-time needs --policy time and '
                         '--num-modules K (the K whose splits are run)')
    if args.threads:
        torch.set_num_threads(args.threads)
    retained = retain_host_memory()  # time steady steps, as training runs
    MMLogger.get_instance('infopro_mm_plan_split', log_level='WARNING')
    cfg = load_config(args.config, args.cfg_options)
    size, batch = default_input(cfg)
    input_size = tuple(args.input_size) if args.input_size else size
    batch_size = args.batch_size or batch
    budget = parse_size(args.max_memory) if args.max_memory else None
    optimizer = optimizer_cfg(cfg, args.optimizer)
    states = optimizer_states(optimizer)
    template, scope = infopro_template(cfg)
    model = build_model(template, scope, Method('e2e'), input_size,
                        batch_size, torch.device('cpu'))
    profile = model.profile_memory(input_size, batch_size, count_flops=True)
    times = None
    if args.policy == 'time':
        times = model.profile_time(input_size, batch_size, args.warmup,
                                   args.repeats, args.device,
                                   CLOCKS[args.clock])
    del model
    chosen, reason = choose(profile, states, budget, args.num_modules)
    rows = plan_rows(profile, states, max(args.max_k, chosen or 1), times)
    report = dict(
        config=args.config,
        input_size=list(input_size),
        batch_size=batch_size,
        optimizer=optimizer,
        optimizer_name=str(optimizer['type']),
        optimizer_states=states,
        max_memory=budget,
        chosen_num_modules=chosen,
        choice=reason,
        policy=args.policy,
        clock=args.clock,
        host_memory_retained=retained,
        rows=rows,
        profile=dict(profile, input_size=list(input_size)))
    if times is not None:
        report['time_profile'] = dict(times, input_size=list(input_size))
    print(f'[plan_split] {args.config} at {input_size[0]}x{input_size[1]}, '
          f'batch {batch_size}, optimizer {optimizer["type"]} ({states} '
          'state tensor(s) per parameter); memory in MiB, FLOPs per step'
          + ('' if times is None else
             f'; {args.policy}-balanced cuts, forward + backward time per '
             f'stage on {times["device"]} ({args.clock} clock, median of '
             f'{args.repeats} runs after {args.warmup} warm-up runs)'))
    print(format_table(rows, chosen))
    if reason:
        print(f'[plan_split] {reason}')
    if args.measure_time:
        row = rows[chosen - 1]
        splits = [('time-balanced', row['boundaries']),
                  ('memory-balanced', [
                      profile['names'][c]
                      for c in memory_cuts(profile, chosen)
                  ])]
        own = (cfg.model.get('split') or {}).get('boundaries')
        if own and len(own) == chosen - 1:
            splits.append(('config', list(own)))
        report['measured_time'] = measure_splits(
            template, scope, splits, times, input_size, batch_size,
            torch.device(args.device), args.warmup, args.repeats,
            CLOCKS[args.clock])
        print('[plan_split] measured stage times (forward + backward of '
              'each stage as a module-parallel rank runs it; no optimizer '
              'step, no traffic)')
        print(format_measured(report['measured_time']))
    if args.verify:
        ks = [chosen] if chosen else [r['num_modules'] for r in rows]
        report['verify'] = verify(template, scope, rows, ks, optimizer,
                                  input_size, batch_size)
    os.makedirs(args.out, exist_ok=True)
    with open(osp.join(args.out, 'plan_split.json'), 'w') as f:
        json.dump(report, f, indent=2)
    plot(report, osp.join(args.out, 'plan_split.png'))
    print(f'[plan_split] wrote {osp.join(args.out, "plan_split.json")} and '
          f'{osp.join(args.out, "plan_split.png")}')
    if budget is not None and chosen is None:
        sys.exit(1)
    return report


if __name__ == '__main__':
    main()
