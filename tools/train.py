"""Train a model from a config, with infopro_mm's components registered.

Usage: python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]]
       [--amp] [--auto-scale-lr] [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import logging
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.logging import print_log

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.engine import build_runner
from infopro_mm.utils import (MissingExtraError, allow_trusted_checkpoints,
                              destroy_distributed, init_cpu_distributed,
                              load_config)

AMP_TYPES = {
    'OptimWrapper': 'AmpOptimWrapper',
    'infopro_mm.InfoProOptimWrapper': 'infopro_mm.InfoProAmpOptimWrapper',
    'InfoProOptimWrapper': 'InfoProAmpOptimWrapper',
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (GPUs x batch size per GPU) / the '
        "config's auto_scale_lr.base_batch_size")
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, xxx=yyy format')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local_rank, torchrun --local-rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_amp(cfg: Config) -> None:
    """Switch the optimizer wrapper to its AMP twin."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type in AMP_TYPES.values():
        print_log('AMP is already enabled in the config.',
                  logger='current', level=logging.WARNING)
        return
    if wrapper_type not in AMP_TYPES:
        raise ValueError(f'--amp does not know the AMP version of '
                         f'optim_wrapper type {wrapper_type!r}')
    cfg.optim_wrapper.type = AMP_TYPES[wrapper_type]
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def enable_auto_scale_lr(cfg: Config) -> None:
    """Let mmengine scale the lr to the batch size actually used."""
    if 'base_batch_size' not in cfg.get('auto_scale_lr', {}):
        raise ValueError(
            '--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
            'config (the total batch size its lr is meant for), e.g. '
            '--cfg-options auto_scale_lr.base_batch_size=1024')
    cfg.auto_scale_lr.enable = True


def main() -> None:
    args = parse_args()
    allow_trusted_checkpoints()
    try:
        cfg = load_config(args.config)
    except MissingExtraError as exc:
        sys.exit(f'error: {exc}')
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        enable_amp(cfg)
    if args.auto_scale_lr:
        enable_auto_scale_lr(cfg)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    init_cpu_distributed(
        args.launcher,
        cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl'))
    runner = build_runner(cfg)  # InfoProRunner: layouts, safe resume
    runner.train()
    destroy_distributed()


if __name__ == '__main__':
    main()
