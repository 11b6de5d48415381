"""Evaluate a checkpoint with a config's test set and metric.

InfoPro configs are built for inference (``train_cfg=None``: no local heads,
no memory planning); checkpoints of either layout load (InfoProRunner).

Usage: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--tta]
       [--cfg-options k=v ...] [--launcher pytorch]
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.engine import build_runner
from infopro_mm.models import is_infopro_config
from infopro_mm.utils import (allow_trusted_checkpoints, destroy_distributed,
                              init_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir', help='the dir to save logs and evaluation results')
    parser.add_argument(
        '--tta',
        action='store_true',
        help="test-time augmentation: the config's tta_pipeline and "
        'tta_model (mmseg: multi-scale + flip, the paper\'s MS+Flip rows)')
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
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def enable_tta(cfg: Config) -> None:
    """Wrap the model in the config's TTA model, test with its pipeline."""
    missing = [key for key in ('tta_model', 'tta_pipeline') if key not in cfg]
    if missing:
        raise ValueError(f'--tta needs {" and ".join(missing)} in the config '
                         "(mmseg's default_runtime.py and dataset configs "
                         'define them)')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model


def main() -> None:
    args = parse_args()
    allow_trusted_checkpoints()
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if is_infopro_config(cfg.model):
        cfg.model.train_cfg = None  # inference build
    if args.tta:
        enable_tta(cfg)

    init_cpu_distributed(
        args.launcher,
        cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl'))
    runner = build_runner(cfg)  # InfoProRunner: layouts, safe resume
    runner.test()
    destroy_distributed()


if __name__ == '__main__':
    main()
