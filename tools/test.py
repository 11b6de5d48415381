"""Evaluate a checkpoint with a config's test set and metric.

InfoPro configs are built for inference (``train_cfg=None``: no local heads,
no memory planning); checkpoints of either layout load (InfoProRunner).

Usage: python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--tta]
       [--out OUT] [--show] [--show-dir DIR] [--wait-time S]
       [--cfg-options k=v ...] [--launcher pytorch]

``--out``, ``--show`` and ``--show-dir`` do what they do in the tools of the
config's downstream package (its ``default_scope``): mmseg writes every
prediction as a PNG into the ``--out`` folder; mmpretrain and mmdet dump all
predictions into the ``--out`` pickle file. ``--show``/``--show-dir`` switch
on the config's visualization hook (window / saved drawings).
"""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.apis import inference_config
from infopro_mm.engine import build_runner
from infopro_mm.utils import (MissingExtraError, allow_trusted_checkpoints,
                              destroy_distributed, init_cpu_distributed,
                              load_config)

#: default_scope -> (the visualization hook's switch, its --show-dir key;
#: None: the visualizer's save_dir, as mmseg's tools/test.py does)
VISUALIZATION = {
    'mmseg': ('draw', None),
    'mmdet': ('draw', 'test_out_dir'),
    'mmpretrain': ('enable', 'out_dir'),
}
#: default_scope -> the metric that dumps predictions into a pickle file
DUMP_METRICS = {'mmdet': 'DumpDetResults', 'mmpretrain': 'DumpResults'}


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
        '--out',
        help='save the predictions: mmseg configs, a folder of PNG maps '
        '(one per image, label ids); mmpretrain/mmdet configs, a .pkl file')
    parser.add_argument(
        '--show', action='store_true', help='show the drawn predictions')
    parser.add_argument(
        '--show-dir',
        help='save the drawn predictions (mmseg: under DIR/vis_data/; '
        'mmdet, mmpretrain: under WORK_DIR/TIMESTAMP/DIR)')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='--show: seconds per image')
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


def _scope(cfg: Config) -> str:
    scope = cfg.get('default_scope')
    if scope not in VISUALIZATION:
        raise ValueError(f'--out/--show/--show-dir know the tools of '
                         f'{sorted(VISUALIZATION)}, not default_scope '
                         f'{scope!r}')
    return scope


def enable_visualization(cfg: Config, show: bool, show_dir: str,
                         wait_time: float) -> None:
    """Switch on the config's visualization hook (--show, --show-dir)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        raise ValueError('--show/--show-dir need default_hooks.visualization '
                         '(the downstream default_runtime.py defines it)')
    switch, dir_key = VISUALIZATION[_scope(cfg)]
    hook[switch] = True
    if show:
        hook.update(show=True, wait_time=wait_time)
    if show_dir:
        if dir_key is None:
            cfg.visualizer.save_dir = show_dir
        else:
            hook[dir_key] = show_dir


def save_predictions(cfg: Config, out: str) -> None:
    """Keep every test prediction (``--out``), as the downstream tool does."""
    scope = _scope(cfg)
    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, list) else [cfg.test_evaluator]
    if scope == 'mmseg':
        for evaluator in evaluators:
            evaluator.output_dir = out  # IoUMetric writes one PNG per image
        return
    if not out.endswith(('.pkl', '.pickle')):
        raise ValueError(f'--out for {scope} configs is a .pkl file, got '
                         f'{out!r}')
    cfg.test_evaluator = evaluators + [
        dict(type=DUMP_METRICS[scope], out_file_path=out)
    ]


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
    cfg.load_from = args.checkpoint
    cfg = inference_config(cfg)  # InfoPro: no local heads, no planning
    if args.tta:
        enable_tta(cfg)
    if args.show or args.show_dir:
        enable_visualization(cfg, args.show, args.show_dir, args.wait_time)
    if args.out is not None:
        save_predictions(cfg, args.out)

    init_cpu_distributed(
        args.launcher,
        cfg.get('env_cfg', {}).get('dist_cfg', {}).get('backend', 'nccl'))
    runner = build_runner(cfg)  # InfoProRunner: layouts, safe resume
    runner.test()
    destroy_distributed()


if __name__ == '__main__':
    main()
