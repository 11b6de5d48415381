"""Will it fit? The training memory of every K, before any training step.

Usage::

    python tools/analysis/plan_split.py CONFIG --input-size H W \
        --batch-size N [--num-modules K | --max-memory 10GiB] \
        [--optimizer sgd|adamw|...] [--max-k 6] [--out DIR] [--verify] \
        [--threads N] [--cfg-options k=v ...]

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
"""
import argparse
import json
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
                               plan_balanced_cuts, plan_within_budget)
from infopro_mm.utils import (format_size, optimizer_of,  # noqa: E402
                              optimizer_states, parse_size)

MiB = 2**20


def plan_rows(profile: MemoryProfile, states: int,
              max_k: int) -> List[dict]:
    """The balanced split of every K = 1..``max_k`` and its estimates.

    Args:
        profile (MemoryProfile): From ``InfoPro.profile_memory`` with FLOPs.
        states (int): Optimizer state tensors per parameter.
        max_k (int): Largest K (at most the number of basic layers).

    Returns:
        list[dict]: One row per K.
    """
    names = profile['names']
    rows = []
    for k in range(1, min(max_k, len(names)) + 1):
        cuts, modules = plan_balanced_cuts(profile['layer_bytes'],
                                           profile['input_bytes'],
                                           profile['head_bytes'],
                                           profile['tail_bytes'], k)
        rows.append(
            dict(
                num_modules=k,
                cuts=cuts,
                boundaries=[names[c] for c in cuts],
                module_bytes=modules,
                activation_bytes=max(modules),
                fixed_bytes=profile.fixed_bytes(cuts, states),
                peak_bytes=profile.peak_bytes(cuts, states),
                head_flops=sum(profile['head_flops'][c] for c in cuts)))
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


def _mib(value: float) -> str:
    return (f'{value / MiB:,.0f}'
            if abs(value) >= 100 * MiB else f'{value / MiB:,.1f}')


def _gflops(value: float) -> str:
    return f'{value / 1e9:,.1f}' if value >= 1e10 else f'{value / 1e9:.3f}'


def format_table(rows: Sequence[dict], chosen: Optional[int] = None) -> str:
    """A markdown table of :func:`plan_rows` (``*`` marks ``chosen``)."""
    lines = [
        '| K | cuts after | per-module activations MiB | largest MiB '
        '| x E2E | fixed MiB | peak MiB | x E2E | local heads GFLOPs '
        '| x E2E FLOPs |', '|' + '---|' * 10
    ]
    for row in rows:
        mark = '*' if row['num_modules'] == chosen else ''
        lines.append(
            f'| {row["num_modules"]}{mark} | '
            f'{", ".join(row["boundaries"]) or "-"} | '
            f'{" / ".join(_mib(b) for b in row["module_bytes"])} | '
            f'{_mib(row["activation_bytes"])} | '
            f'{row["activation_ratio"]:.3f} | {_mib(row["fixed_bytes"])} | '
            f'{_mib(row["peak_bytes"])} | {row["peak_ratio"]:.3f} | '
            f'{_gflops(row["head_flops"])} | '
            f'+{100 * row["head_flops_ratio"]:.1f} % |')
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
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
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
    del model
    chosen, reason = choose(profile, states, budget, args.num_modules)
    rows = plan_rows(profile, states, max(args.max_k, chosen or 1))
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
        rows=rows,
        profile=dict(profile, input_size=list(input_size)))
    print(f'[plan_split] {args.config} at {input_size[0]}x{input_size[1]}, '
          f'batch {batch_size}, optimizer {optimizer["type"]} ({states} '
          'state tensor(s) per parameter); memory in MiB, FLOPs per step')
    print(format_table(rows, chosen))
    if reason:
        print(f'[plan_split] {reason}')
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
