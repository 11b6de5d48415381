"""Step time of InfoPro under InfoProDDP vs end-to-end under mmengine's DDP.

Usage::

    python tools/analysis/benchmark_ddp.py CONFIG [--num-modules K] \
        [--policy balanced|uniform] [--input-size H W] [--batch-size N] \
        [--iters N] [--warmup N] [--nproc N] [--out FILE] \
        [--cfg-options k=v ...]

Spawns ``--nproc`` CPU processes (gloo; each gets its share of the cores,
and SyncBN becomes BN: torch's SyncBN refuses CPU tensors) or uses one GPU
per process (NCCL). Every rank builds the config's model the way
``benchmark_memory.py`` does (same config handling, synthetic batch and
planner; InfoPro split into K modules by the policy at this input and
batch) and trains it five ways:

- ``e2e_mmddp``: the plain architecture in ``MMDistributedDataParallel``, as
  mmengine's runner builds it (the reference);
- ``infopro_ddp`` / ``infopro_ddp_no_overlap``: InfoPro in ``InfoProDDP``,
  all-reducing during the backwards or only before the optimizer step;
- ``e2e_no_comm`` / ``infopro_no_comm``: both models without a wrapper, each
  rank alone: the compute part of the ratio.

The methods take turns every iteration so that machine load hits them
alike. Prints a markdown table (median step time per method and its ratio
to ``e2e_mmddp`` from the same run) and writes JSON.
"""
import argparse
import copy
import json
import os
import os.path as osp
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import DictAction
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from benchmark_memory import (Method, build_model, infopro_template,  # noqa
                              load_config, synthetic_batch)

from infopro_mm.engine import InfoProOptimWrapper  # noqa: E402
from infopro_mm.models import InfoProDDP  # noqa: E402

METHODS = ('e2e_mmddp', 'infopro_ddp', 'infopro_ddp_no_overlap',
           'e2e_no_comm', 'infopro_no_comm')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='an InfoPro or downstream config')
    parser.add_argument('--num-modules', type=int, default=2, help='K')
    parser.add_argument('--policy', default='balanced',
                        choices=['balanced', 'uniform'])
    parser.add_argument('--input-size', type=int, nargs=2, default=(64, 64),
                        metavar=('H', 'W'))
    parser.add_argument('--batch-size', type=int, default=8,
                        help='per process')
    parser.add_argument('--iters', type=int, default=10,
                        help='timed iterations per method')
    parser.add_argument('--warmup', type=int, default=2,
                        help='untimed iterations before them')
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
    if args.num_modules < 2:
        parser.error('--num-modules must be >= 2')
    return args


def sync_bn_to_bn(cfg):
    """``cfg`` with every ``SyncBN`` norm turned into ``BN``."""
    if isinstance(cfg, dict):
        return {
            key: 'BN' if key == 'type' and value == 'SyncBN' else
            sync_bn_to_bn(value)
            for key, value in cfg.items()
        }
    if isinstance(cfg, (list, tuple)):
        return type(cfg)(sync_bn_to_bn(value) for value in cfg)
    return cfg


def build_methods(args, device: str) -> dict:
    """``{name: (model or wrapper, optimizer wrapper)}`` of every method."""
    template, scope = infopro_template(
        load_config(args.config, args.cfg_options))
    if device == 'cpu':  # torch's SyncBN refuses CPU tensors under a group
        template = sync_bn_to_bn(template)
    size = tuple(args.input_size)
    plain = build_model(template, scope, Method('e2e'), size,
                        args.batch_size, device).architecture
    infopro = build_model(template, scope,
                          Method('infopro', args.num_modules, args.policy),
                          size, args.batch_size, device)
    ids = [torch.cuda.current_device()] if device == 'cuda' else None
    e2e, overlapped, serial = (
        copy.deepcopy(model) for model in (plain, infopro, infopro))
    methods = dict(  # name: (what runs train_step, the model it trains)
        e2e_mmddp=(MMDistributedDataParallel(
            module=e2e, device_ids=ids, broadcast_buffers=False), e2e),
        infopro_ddp=(InfoProDDP(overlapped, overlap=True), overlapped),
        infopro_ddp_no_overlap=(InfoProDDP(serial, overlap=False), serial),
        e2e_no_comm=(plain, plain),
        infopro_no_comm=(infopro, infopro))
    return {
        name: (runner, (OptimWrapper if name.startswith('e2e') else
                        InfoProOptimWrapper)(
                            torch.optim.SGD(model.parameters(), lr=1e-3)))
        for name, (runner, model) in methods.items()
    }


def worker(rank: int, nproc: int, port: int, args, results) -> None:
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cuda':
        torch.cuda.set_device(rank)
    else:  # one share of the cores each: oversubscribed OpenMP crawls
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    dist.init_process_group(
        'nccl' if device == 'cuda' else 'gloo',
        init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=nproc)
    methods = build_methods(args, device)
    infopro = methods['infopro_no_comm'][0]
    batch = synthetic_batch(infopro, args.batch_size, tuple(args.input_size))
    times = {name: [] for name in methods}
    for it in range(args.warmup + args.iters):
        for name, (model, optim) in methods.items():
            data = copy.deepcopy(batch)  # preprocessors may edit samples
            dist.barrier()
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.train_step(data, optim)
            if device == 'cuda':
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
        if rank == 0:
            print_log(
                f'iteration {it + 1}/{args.warmup + args.iters}'
                f'{" (warm-up)" if it < args.warmup else ""}: ' +
                ', '.join(f'{n} {t[-1]:.3f} s' for n, t in times.items()),
                logger='current')
    if rank == 0:
        results['cuts'] = infopro.splitter.boundaries
        results.update({
            name: statistics.median(t[args.warmup:])
            for name, t in times.items()
        })
    dist.destroy_process_group()


def main() -> None:
    args = parse_args()
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(worker, args=(args.nproc, port, args, results),
                 nprocs=args.nproc, join=True)
        medians = dict(results)
    cuts = medians.pop('cuts')
    base = medians['e2e_mmddp']
    rows = [
        dict(method=name, median_step_s=round(medians[name], 4),
             ratio_to_e2e=round(medians[name] / base, 3))
        for name in METHODS
    ]
    comm = dict(
        e2e=medians['e2e_mmddp'] / medians['e2e_no_comm'],
        infopro=medians['infopro_ddp'] / medians['infopro_no_comm'])
    print(f'\n{args.nproc} processes, batch {args.batch_size} per process, '
          f'input {tuple(args.input_size)}, InfoPro K={args.num_modules} '
          f'({args.policy}, cut after {", ".join(cuts)}), median of '
          f'{args.iters} iterations')
    print('| method | median step (s) | ratio to E2E |\n|---|---|---|')
    for row in rows:
        print(f"| {row['method']} | {row['median_step_s']} | "
              f"{row['ratio_to_e2e']} |")
    print(f"distributed / no-communication step: E2E {comm['e2e']:.3f}, "
          f"InfoPro {comm['infopro']:.3f}")
    if args.out:
        report = dict(
            command=' '.join(['python', *sys.argv]),
            config=args.config, nproc=args.nproc,
            batch_size=args.batch_size, input_size=list(args.input_size),
            num_modules=args.num_modules, policy=args.policy, cuts=cuts,
            iters=args.iters, torch=torch.__version__,
            device=torch.cuda.get_device_name()
            if torch.cuda.is_available() else 'cpu',
            results=rows,
            distributed_over_no_comm={
                k: round(v, 3) for k, v in comm.items()})
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=2)


if __name__ == '__main__':
    main()
