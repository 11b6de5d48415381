"""The README's main job: a real InfoPro training on a small real-image
segmentation set, on CPU, in a few minutes.

It builds the digits-on-textures dataset on first use (``data/digits_seg``),
trains the K=2 InfoPro* DeepLabV3 demo config (or its end-to-end twin with
``--e2e``), evaluates per-class IoU on the validation split and prints where
the checkpoint and logs are.

Usage: python tools/demo.py [--e2e] [--work-dir DIR] [--cfg-options k=v ...]
"""
import argparse
import glob
import os.path as osp
import sys

import numpy as np

from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from PIL import Image

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.datasets import DigitsSegDataset, make_digits_segmentation

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(
    infopro='configs/demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py',
    e2e='configs/demo/deeplabv3_r18-d8_e2e_digits-64x64.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--e2e',
        action='store_true',
        help='train the end-to-end twin instead of InfoPro')
    parser.add_argument('--work-dir', help='where logs and checkpoints go')
    parser.add_argument(
        '--data-root',
        default=osp.join(REPO, 'data/digits_seg'),
        help='where the dataset is (generated if missing)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, xxx=yyy format')
    return parser.parse_args()


def majority_miou(data_root: str) -> float:
    """mIoU (%) of predicting the background class on every val pixel."""
    labels = np.concatenate([
        np.asarray(Image.open(path)).ravel()
        for path in glob.glob(osp.join(data_root, 'ann_dir/val/*.png'))
    ])
    return 100. * np.mean(labels == 0) / len(DigitsSegDataset.METAINFO[
        'classes'])


def main() -> None:
    args = parse_args()
    name = 'e2e' if args.e2e else 'infopro'
    print(f'[demo] dataset: {args.data_root} (built on first use from '
          "scikit-learn's digits and scikit-image's photos)")
    make_digits_segmentation(args.data_root)
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[name]))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    cfg.work_dir = args.work_dir or osp.join(REPO, 'work_dirs', f'demo_{name}')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'[demo] training {CONFIGS[name]} on CPU; the per-class IoU table '
          'is printed after the last iteration')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = {
        k[len('val/'):]: v.current()
        for k, v in runner.message_hub.log_scalars.items()
        if k.startswith('val/')
    }
    last = osp.join(cfg.work_dir, 'last_checkpoint')
    checkpoint = open(last).read().strip() if osp.exists(last) else None
    print(f"\n[demo] {name}: mIoU {metrics.get('mIoU', float('nan')):.2f}, "
          f"mAcc {metrics.get('mAcc', float('nan')):.2f}, "
          f"aAcc {metrics.get('aAcc', float('nan')):.2f} (predicting "
          f'background everywhere would score mIoU '
          f'{majority_miou(args.data_root):.2f})')
    print(f'[demo] checkpoint: {checkpoint}')
    print(f'[demo] logs: {runner.log_dir}')
    if checkpoint is None:
        sys.exit('[demo] no checkpoint was written')


if __name__ == '__main__':
    main()
