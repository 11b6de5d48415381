"""Step time of InfoPro under InfoProDDP vs end-to-end under mmengine's DDP.

Spawns ``--nproc`` CPU processes (gloo) or uses one GPU per process, builds
the InfoPro config's model three ways on every rank — the plain architecture
in ``MMDistributedDataParallel`` (E2E), InfoPro in ``InfoProDDP`` with and
without overlapping the per-module all-reduce — and times training steps on
the same synthetic batch, interleaving the methods so that machine load
hits them alike. Prints a markdown table (median step time and the ratio to
E2E from the same run) and writes JSON.

Usage: python tools/analysis/benchmark_ddp.py CONFIG [--input-size H W]
       [--batch-size N] [--iters N] [--warmup N] [--nproc N] [--out FILE]
       [--cfg-options k=v ...]
"""
import argparse
import copy
import json
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config, DictAction
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

import infopro_mm  # noqa: F401
from infopro_mm.engine import InfoProOptimWrapper
from infopro_mm.models import InfoProDDP, dummy_data_samples
from infopro_mm.registry import MODELS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='an InfoPro config')
    parser.add_argument('--input-size', type=int, nargs=2, default=(64, 64))
    parser.add_argument('--batch-size', type=int, default=8,
                        help='per process')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--nproc', type=int, default=2)
    parser.add_argument('--out', help='JSON file for the results')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def synthetic_batch(model, batch_size: int, size) -> dict:
    gen = torch.Generator().manual_seed(0)
    inputs = [
        torch.randint(0, 256, (3, *size), generator=gen, dtype=torch.uint8)
        for _ in range(batch_size)
    ]
    samples = dummy_data_samples(model, batch_size, tuple(size))
    for sample in samples:
        if 'gt_sem_seg' in sample:  # random labels, not all zeros
            sample.gt_sem_seg.data = torch.randint(
                0, 2, sample.gt_sem_seg.data.shape, generator=gen)
    return dict(inputs=inputs, data_samples=samples)


def build_methods(cfg: Config, device: str) -> dict:
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        torch.manual_seed(0)
        infopro = MODELS.build(copy.deepcopy(cfg.model)).to(device)
        torch.manual_seed(0)
        plain = MODELS.build(copy.deepcopy(cfg.model.architecture)).to(device)
    ids = [torch.cuda.current_device()] if device == 'cuda' else None
    methods = dict(e2e_mmddp=(MMDistributedDataParallel(
        module=plain, device_ids=ids), OptimWrapper, plain))
    for overlap in (True, False):
        name = 'infopro_ddp' + ('' if overlap else '_no_overlap')
        model = copy.deepcopy(infopro)
        methods[name] = (InfoProDDP(model, overlap=overlap),
                         InfoProOptimWrapper, model)
    return {
        name: (wrapped,
               wrapper_cls(torch.optim.SGD(model.parameters(), lr=1e-3)))
        for name, (wrapped, wrapper_cls, model) in methods.items()
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
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    methods = build_methods(cfg, device)
    batch = synthetic_batch(
        next(iter(methods.values()))[0].module, args.batch_size,
        args.input_size)
    times = {name: [] for name in methods}
    for it in range(args.warmup + args.iters):
        for name, (wrapped, optim) in methods.items():
            dist.barrier()
            if device == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            wrapped.train_step(copy.deepcopy(batch), optim)
            if device == 'cuda':
                torch.cuda.synchronize()
            if it >= args.warmup:
                times[name].append(time.perf_counter() - start)
    if rank == 0:
        results.update({n: statistics.median(t) for n, t in times.items()})
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
    base = medians['e2e_mmddp']
    rows = [
        dict(method=name, median_step_s=round(t, 4),
             ratio_to_e2e=round(t / base, 3)) for name, t in medians.items()
    ]
    print(f'\n{args.nproc} processes, batch {args.batch_size} per process, '
          f'input {tuple(args.input_size)}, {args.iters} measured iterations')
    print('| method | median step (s) | ratio to E2E |\n|---|---|---|')
    for row in rows:
        print(f"| {row['method']} | {row['median_step_s']} | "
              f"{row['ratio_to_e2e']} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, nproc=args.nproc,
                           batch_size=args.batch_size,
                           input_size=list(args.input_size),
                           iters=args.iters, results=rows), f, indent=2)


if __name__ == '__main__':
    main()
