"""Accuracy of locally supervised training, like the paper's Table 2.

Trains every given config with every seed through ``tools/train.py``
(mmengine's runner, the package's own components), reads each run's
validation curve and local losses from its ``vis_data/scalars.json``, and
prints mean +- std of the final top-1 error per method and K, with the
end-to-end baseline first. Writes everything to JSON and draws two plots:
error vs K per method, and accuracy vs iteration (mean over seeds).

Each config is one row of the table; its method is read from the config:
a plain classifier is E2E; an InfoPro model whose only local head is a
``'linear'`` classifier is greedy SL; without a (weighted) reconstruction
head it is DGL; with one it is InfoPro (Softmax) or, with a
``ContrastHead``, InfoPro (Contrast). A task head behind a
``MomentumAuxHead`` makes it DGL + MAN or InfoPro + MAN (by the same
reconstruction test), an ``AugLocalHead`` AugLocal. A config whose
``train_cfg`` is ``infopro_mm.AsynchronousTrainLoop`` trains its modules one
after the other: its method is prefixed ``Asy-`` (Asy-InfoPro (Softmax));
with the proxy its loop is kept and the overlay's schedule is every module's,
so the run has K times the overlay's iterations, and its row is the last
validation (of the last phase, the only one that validates).

By default it runs the offline proxy: the ResNet-32 rows of
``configs/cifar10/`` (E2E, greedy SL, DGL, InfoPro Softmax and Contrast at
K = 2, 4, 8, the authors' heads, loss weights and split points) with the
data and schedule of ``configs/_base_/digits_on_photos.py`` (built on first
use under ``data/digits_on_photos``), 3 seeds. ``--no-proxy`` trains the
configs as they are (CIFAR-10 with ``data/cifar10``).

Runs whose results exist are not trained again, so an interrupted grid
continues where it stopped.

Usage:
    python tools/analysis/benchmark_accuracy.py [CONFIG ...] [--seeds 0 1 2]
        [--jobs 2] [--no-proxy] [--proxy-root DIR] [--device cpu|cuda]
        [--out DIR] [--name NAME]
        [--cfg-options k=v ...]
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

from infopro_mm.models import is_infopro_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROXY_OVERLAY = osp.join(REPO, 'configs/_base_/digits_on_photos.py')
PROXY_ROWS = ('e2e', 'greedy-sl', 'dgl', 'infopro-softmax',
              'infopro-contrast')
METHOD_ORDER = ('E2E', 'greedy SL', 'DGL', 'InfoPro (Softmax)',
                'InfoPro (Contrast)', 'Asy-InfoPro (Softmax)', 'DGL + MAN',
                'InfoPro + MAN', 'AugLocal')
METRIC = 'accuracy/top1'
# mmengine resolves `mmpretrain::` bases through pkg_resources, which is not
# thread-safe: configs are parsed one at a time.
CONFIG_LOCK = threading.Lock()
COLORS = dict(
    zip(METHOD_ORDER,
        ('black', 'tab:orange', 'tab:green', 'tab:red', 'tab:purple',
         'tab:pink', 'tab:olive', 'tab:brown', 'tab:cyan')))


def proxy_configs(network: str = 'resnet32',
                  num_modules=(2, 4, 8)) -> List[str]:
    """The default grid: the CIFAR-10 Table-2 rows of ``network``."""
    root = osp.join(REPO, 'configs/cifar10')
    configs = [osp.join(root, f'{network}_e2e_cifar10.py')]
    for method in PROXY_ROWS[1:]:
        for k in num_modules:
            configs.append(
                osp.join(root, f'{network}_{method}_k{k}_cifar10.py'))
    return configs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        'configs', nargs='*', help='row configs (default: the proxy grid)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument(
        '--jobs',
        type=int,
        default=2,
        help='runs trained at once, each on cpu_count/jobs threads')
    parser.add_argument(
        '--no-proxy',
        dest='proxy',
        action='store_false',
        help='train the configs on their own data and schedule')
    parser.add_argument(
        '--proxy-root',
        help='a built proxy set to use as it is (built there with the '
        "overlay's proxy_data when missing; default: the overlay's "
        'data_root under the repository, rebuilt when its settings differ)')
    parser.add_argument(
        '--device',
        default='cpu',
        choices=['cpu', 'cuda'],
        help='cpu hides the GPUs; cuda trains on them')
    parser.add_argument(
        '--out',
        default=osp.join(REPO, 'work_dirs/benchmark_accuracy'),
        help='runs go to OUT/runs/<config>/seed<k>; results to OUT')
    parser.add_argument(
        '--name', default='accuracy', help='stem of the JSON and plots')
    parser.add_argument(
        '--report-only',
        action='store_true',
        help='train nothing: report the runs of the grid that are done')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        default={},
        help='overrides applied to every run, xxx=yyy format')
    return parser.parse_args()


# ----------------------------------------------------------------------
# what a config trains
def is_asynchronous(cfg: Config) -> bool:
    """Whether a config trains its local modules one after the other."""
    loop = cfg.get('train_cfg') or {}
    return str(loop.get('type', '')).endswith('AsynchronousTrainLoop')


def describe(cfg: Config) -> Tuple[str, int]:
    """Method name and number of local modules K of a row config.

    Args:
        cfg (Config): A classification config.

    Returns:
        tuple[str, int]: One of :data:`METHOD_ORDER` and K.
    """
    method, k = _simultaneous_method(cfg)
    if not is_asynchronous(cfg):
        return method, k
    if f'Asy-{method}' not in METHOD_ORDER:
        raise ValueError(
            f'{method} trained by AsynchronousTrainLoop is not a method of '
            f'this benchmark (asynchronous: '
            f'{[m for m in METHOD_ORDER if m.startswith("Asy-")]})')
    return f'Asy-{method}', k


def _simultaneous_method(cfg: Config) -> Tuple[str, int]:
    """:func:`describe` of the model, whatever its train loop."""
    model = cfg.model
    if not is_infopro_config(model):
        return 'E2E', 1
    split = model.get('split', {})
    if split.get('boundaries') is not None:
        k = len(split['boundaries']) + 1
    else:
        k = int(split['num_modules'])
    heads = {n: h for n, h in model.get('local_heads', {}).items() if h}
    weights = model.get('loss_weights', {})

    def weighted(name: str) -> bool:
        w = weights.get(name, 0)
        return any(v != 0 for v in (w if isinstance(w, (list, tuple)) else
                                    [w]))

    def typed(head: dict, name: str) -> bool:
        return str(head.get('type', '')).endswith(name)

    task = heads.get('task', {})
    if any(typed(h, 'AugLocalHead') for h in heads.values()):
        return 'AugLocal', k
    man = typed(task, 'MomentumAuxHead')
    if man:
        task = task.get('head', {})
    if 'recon' not in heads or not weighted('recon'):
        if man:
            return 'DGL + MAN', k
        if task.get('arch') == 'linear' and len(heads) == 1:
            return 'greedy SL', k
        return 'DGL', k
    if man:
        return 'InfoPro + MAN', k
    if typed(task, 'ContrastHead'):
        return 'InfoPro (Contrast)', k
    return 'InfoPro (Softmax)', k


def _drop_delete_keys(node):
    """Remove ``_delete_`` flags left where the row had no such key."""
    if isinstance(node, dict):
        node.pop('_delete_', None)
        for value in node.values():
            _drop_delete_keys(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _drop_delete_keys(value)


def run_config(config: str, seed: int, args: argparse.Namespace,
               overlay: Optional[Config]) -> Config:
    """The config one run trains: the row, the proxy overlay, the seed.

    The overlay is merged as a child config is into its base (its
    ``_delete_`` keys replace the row's entries). An asynchronous row keeps
    its loop, with the overlay's schedule for every module.
    """
    cfg = Config.fromfile(config)
    if overlay is not None:
        loop = cfg.train_cfg.type if is_asynchronous(cfg) else None
        cfg.merge_from_dict(overlay.to_dict())
        _drop_delete_keys(cfg._cfg_dict)
        if loop is not None:
            cfg.train_cfg.type = loop
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.merge_from_dict(args.cfg_options)
    return cfg


# ----------------------------------------------------------------------
# training
def train(config: str, seed: int, args: argparse.Namespace,
          overlay: Optional[Config], threads: int) -> dict:
    """Train one (config, seed) through tools/train.py; return its record."""
    name = osp.splitext(osp.basename(config))[0]
    work_dir = osp.join(args.out, 'runs', name, f'seed{seed}')
    record_file = osp.join(work_dir, 'record.json')
    if osp.exists(record_file):
        with open(record_file) as f:
            return json.load(f)
    os.makedirs(work_dir, exist_ok=True)
    cfg_file = osp.join(work_dir, f'{name}.py')
    with CONFIG_LOCK:
        cfg = run_config(config, seed, args, overlay)
        method, k = describe(cfg)
        cfg.dump(cfg_file)
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONHASHSEED=str(seed))
    if args.device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    tic = time.perf_counter()
    with open(osp.join(work_dir, 'train.out'), 'w') as out:
        proc = subprocess.run(
            [
                sys.executable,
                osp.join(REPO, 'tools/train.py'), cfg_file, '--work-dir',
                work_dir
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f'{name} seed {seed} failed (exit '
                           f'{proc.returncode}): see '
                           f'{osp.join(work_dir, "train.out")}')
    record = dict(
        config=osp.relpath(config, REPO),
        method=method,
        num_modules=k,
        seed=seed,
        train_time_s=round(time.perf_counter() - tic, 1),
        **read_scalars(work_dir))
    with open(record_file, 'w') as f:
        json.dump(record, f)
    return record


def read_scalars(work_dir: str) -> dict:
    """Validation curve and training losses from a run's scalars.json."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no vis_data/scalars.json in {work_dir}')
    curve, losses = [], {}
    with open(files[-1]) as f:
        for line in f:
            entry = json.loads(line)
            step = int(entry['step'])
            if METRIC in entry:
                curve.append([step, float(entry[METRIC])])
            for key, value in entry.items():
                if key.startswith('loss') or '.loss_' in key:
                    losses.setdefault(key, []).append([step, float(value)])
    if not curve:
        raise ValueError(f'no {METRIC} in {files[-1]}')
    return dict(top1=curve[-1][1], curve=curve, losses=losses)


# ----------------------------------------------------------------------
# reporting
def summarise(records: List[dict]) -> List[dict]:
    """Mean and std of the final error per (method, K)."""
    groups: Dict[Tuple[str, int], List[dict]] = {}
    for r in records:
        groups.setdefault((r['method'], r['num_modules']), []).append(r)
    rows = []
    for (method, k), runs in sorted(
            groups.items(),
            key=lambda g: (METHOD_ORDER.index(g[0][0]), g[0][1])):
        errors = np.array([100. - r['top1'] for r in runs])
        steps = [s for s, _ in runs[0]['curve']]
        accs = np.array([[a for _, a in r['curve']] for r in runs
                         if len(r['curve']) == len(steps)])
        rows.append(
            dict(
                method=method,
                num_modules=k,
                config=runs[0]['config'],
                seeds=[r['seed'] for r in runs],
                error_mean=float(errors.mean()),
                error_std=float(errors.std(ddof=1)) if len(errors) > 1 else
                0.,
                errors=errors.tolist(),
                curve_steps=steps,
                curve_mean=accs.mean(0).tolist(),
                curve_std=(accs.std(0, ddof=1) if len(accs) > 1 else
                           np.zeros(len(steps))).tolist()))
    return rows


def table(rows: List[dict]) -> str:
    """Markdown table: methods x K, test error mean +- std (%).

    A cell with fewer seeds than the most complete one says how many.
    """
    ks = sorted({r['num_modules'] for r in rows if r['num_modules'] > 1})
    cell = {(r['method'], r['num_modules']): r for r in rows}
    most = max(len(r['seeds']) for r in rows)

    def fmt(r: dict) -> str:
        n = len(r['seeds'])
        return (f'{r["error_mean"]:.2f}' +
                (f' +- {r["error_std"]:.2f}' if n > 1 else '') +
                (f' (n={n})' if n < most or n == 1 else ''))

    lines = [
        '| method | ' + ' | '.join(f'K = {k}' for k in ks) + ' |',
        '|---|' + '---|' * len(ks)
    ]
    for method in METHOD_ORDER:
        if method == 'E2E':
            r = cell.get(('E2E', 1))
            if r:
                lines.append('| E2E (K = 1) | ' + ' | '.join(
                    [fmt(r)] + [''] * (len(ks) - 1)) + ' |')
            continue
        if not any((method, k) in cell for k in ks):
            continue
        lines.append(f'| {method} | ' + ' | '.join(
            fmt(cell[method, k]) if (method, k) in cell else '-'
            for k in ks) + ' |')
    return '\n'.join(lines)


def plot(rows: List[dict], path: str, title: str) -> None:
    """Error vs K per method, and the accuracy curves per K."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    ks = sorted({r['num_modules'] for r in rows if r['num_modules'] > 1})
    fig, axes = plt.subplots(
        1, 1 + len(ks), figsize=(4.5 * (1 + len(ks)), 3.8))
    axes = np.atleast_1d(axes)
    e2e = next((r for r in rows if r['method'] == 'E2E'), None)
    ax = axes[0]
    for method in METHOD_ORDER[1:]:
        pts = [r for r in rows if r['method'] == method]
        if pts:
            ax.errorbar([r['num_modules'] for r in pts],
                        [r['error_mean'] for r in pts],
                        yerr=[r['error_std'] for r in pts],
                        marker='o',
                        capsize=3,
                        color=COLORS[method],
                        label=method)
    if e2e:
        ax.axhline(e2e['error_mean'], color='k', ls='--', label='E2E')
        ax.axhspan(
            e2e['error_mean'] - e2e['error_std'],
            e2e['error_mean'] + e2e['error_std'],
            color='k',
            alpha=0.1)
    ax.set_xscale('log', base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel('K (local modules)')
    ax.set_ylabel('test error (%)')
    ax.set_title(title)
    ax.legend(fontsize=7)
    for ax, k in zip(axes[1:], ks):
        for r in [e2e] + [r for r in rows if r['num_modules'] == k]:
            if r is None:
                continue
            mean, std = np.array(r['curve_mean']), np.array(r['curve_std'])
            color = COLORS[r['method']]
            ax.plot(r['curve_steps'], mean, label=r['method'], color=color,
                    ls='--' if r['method'] == 'E2E' else '-')
            ax.fill_between(r['curve_steps'], mean - std, mean + std,
                            color=color, alpha=0.12)
        ax.set_xlabel('iteration')
        ax.set_ylabel('test accuracy (%)')
        ax.set_title(f'K = {k}: accuracy vs iteration')
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    logger = MMLogger.get_instance(
        'benchmark_accuracy', log_level='INFO')
    configs = [osp.abspath(c) for c in args.configs] or proxy_configs()
    missing = [c for c in configs if not osp.exists(c)]
    if missing:
        raise FileNotFoundError(f'configs not found: {missing}')
    overlay = None
    if args.proxy:
        from infopro_mm.datasets import make_digits_classification
        overlay = Config.fromfile(PROXY_OVERLAY)
        data_root = osp.abspath(args.proxy_root or osp.join(
            REPO, overlay.data_root))
        logger.info(f'proxy data: {data_root}')
        if args.proxy_root is None or not osp.exists(
                osp.join(data_root, 'train.json')):
            make_digits_classification(data_root, **overlay.proxy_data)
        overlay.merge_from_dict({
            f'{loader}.dataset.data_root': data_root
            for loader in ('train_dataloader', 'val_dataloader',
                           'test_dataloader')
        })
    os.makedirs(args.out, exist_ok=True)
    jobs = max(1, args.jobs)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    # seed-major: every method's first seed is done before the second
    grid = [(c, s) for s in args.seeds for c in configs]
    logger.info(f'{len(grid)} runs ({len(configs)} configs x seeds '
                f'{args.seeds}), {jobs} at a time, {threads} threads each')
    records, done = [], 0
    tic = time.perf_counter()

    def one(item):
        return train(item[0], item[1], args, overlay, threads)

    if args.report_only:
        grid = [(c, s) for c, s in grid if osp.exists(
            osp.join(args.out, 'runs',
                     osp.splitext(osp.basename(c))[0], f'seed{s}',
                     'record.json'))]
        logger.info(f'report only: {len(grid)} runs are done')
    with ThreadPoolExecutor(jobs) as pool:
        for record in pool.map(one, grid):
            done += 1
            records.append(record)
            logger.info(
                f'[{done}/{len(grid)}] {record["method"]} K='
                f'{record["num_modules"]} seed {record["seed"]}: top-1 '
                f'{record["top1"]:.2f} % ({record["train_time_s"]:.0f} s; '
                f'{time.perf_counter() - tic:.0f} s elapsed)')
    rows = summarise(records)
    text = table(rows)
    title = 'proxy (digits on photos)' if args.proxy else 'as configured'
    seeds = sorted({r['seed'] for r in records})
    print(f'\nTest error (%), mean +- std over seeds {seeds}, '
          f'{title}:\n{text}')
    result = dict(
        command=' '.join(['python'] + sys.argv),
        proxy=args.proxy,
        overlay=osp.relpath(PROXY_OVERLAY, REPO) if args.proxy else None,
        seeds=seeds,
        jobs=jobs,
        threads_per_job=threads,
        device=args.device,
        rows=rows,
        runs=records)
    json_path = osp.join(args.out, f'{args.name}.json')
    with open(json_path, 'w') as f:
        json.dump(result, f, indent=1)
    png_path = osp.join(args.out, f'{args.name}.png')
    plot(rows, png_path, title)
    logger.info(f'wrote {json_path} and {png_path}')


if __name__ == '__main__':
    main()
