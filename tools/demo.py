"""The README's main job: a real InfoPro training on a small real-image
segmentation set, on CPU, in a few minutes.

It builds the digits-on-textures dataset on first use (``data/digits_seg``),
trains the K=2 InfoPro* DeepLabV3 demo config (or its end-to-end twin with
``--e2e``; both, one after the other, with ``--compare``), evaluates
per-class IoU on the validation split and prints where the checkpoint and
logs are. Then it draws ``demo.png`` in the (first) work dir: a few
validation images with their ground truth and the trained model's
prediction (each model's with ``--compare``), and prints a summary: the
mIoU of each trained model and the training memory of the demo model under
InfoPro and end to end, from the balanced planner's profile.

Usage: python tools/demo.py [--e2e | --compare] [--work-dir DIR]
[--num-images N] [--cfg-options k=v ...]
"""
import argparse
import glob
import os.path as osp
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from PIL import Image

import infopro_mm  # noqa: F401  (registers the infopro_mm scope)
from infopro_mm.datasets import DigitsSegDataset, make_digits_segmentation
from infopro_mm.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = dict(
    infopro='configs/demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py',
    e2e='configs/demo/deeplabv3_r18-d8_e2e_digits-64x64.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--e2e',
        action='store_true',
        help='train the end-to-end twin instead of InfoPro')
    group.add_argument(
        '--compare',
        action='store_true',
        help='train InfoPro, then the end-to-end twin, and show both')
    parser.add_argument(
        '--work-dir',
        help='where logs and checkpoints go (with --compare, the twin\'s go '
        'to the same path + "_e2e")')
    parser.add_argument(
        '--num-images', type=int, default=4,
        help='validation images in demo.png (default 4)')
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


def train(name: str, args: argparse.Namespace, work_dir: str) -> Runner:
    """Train one demo config; print its scores, checkpoint and logs."""
    cfg = Config.fromfile(osp.join(REPO, CONFIGS[name]))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = args.data_root
    cfg.work_dir = work_dir
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    print(f'[demo] training {CONFIGS[name]} on CPU; the per-class IoU table '
          'is printed after the last iteration')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = validation_metrics(runner)
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
    return runner


def validation_metrics(runner: Runner) -> Dict[str, float]:
    """The last validation scores of a trained runner."""
    return {
        k[len('val/'):]: v.current()
        for k, v in runner.message_hub.log_scalars.items()
        if k.startswith('val/')
    }


@torch.no_grad()
def predictions(runners: Dict[str, Runner],
                num_images: int) -> Tuple[list, List[np.ndarray], dict]:
    """The first validation images, their labels and every model's
    prediction (class index maps)."""
    first = next(iter(runners.values()))
    batch = next(iter(first.val_dataloader))
    batch = {key: value[:num_images] for key, value in batch.items()}
    images = [img.numpy()[::-1].transpose(1, 2, 0) for img in batch['inputs']]
    labels = [s.gt_sem_seg.data[0].numpy() for s in batch['data_samples']]
    preds = {}
    for name, runner in runners.items():
        runner.model.eval()
        preds[name] = [
            s.pred_sem_seg.data[0].cpu().numpy()
            for s in runner.model.test_step(batch)
        ]
    return images, labels, preds


def draw_grid(images: list, labels: list, preds: Dict[str, list],
              path: str) -> None:
    """One row per image: input, ground truth, one prediction per model."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    palette = np.array(DigitsSegDataset.METAINFO['palette'], np.uint8)
    titles = ['input', 'ground truth'] + [
        f'{"InfoPro K=2" if name == "infopro" else "E2E"} prediction'
        for name in preds
    ]
    cols = len(titles)
    fig, axes = plt.subplots(
        len(images), cols, figsize=(2 * cols, 2 * len(images)),
        squeeze=False)
    for row, (image, label) in enumerate(zip(images, labels)):
        panels = [image, palette[np.where(label == 255, 0, label)]] + [
            palette[p[row]] for p in preds.values()
        ]
        for col, panel in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(panel, interpolation='nearest')
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def planner_memory() -> str:
    """Saved activations of the demo model in training, InfoPro vs E2E,
    from the balanced planner's profile."""
    cfg = Config.fromfile(osp.join(REPO, CONFIGS['infopro']))
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope')):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    profile = model.memory_profile
    infopro = max(profile.module_bytes(model.splitter.cuts))
    e2e = profile.module_bytes([])[0]
    height, width = profile['input_size']
    return (f'[demo] training memory (planner, {height}x{width} x batch '
            f'{profile["batch_size"]}): saved activations InfoPro '
            f'K={model.splitter.num_modules} {infopro / 2**20:.2f} MiB vs '
            f'E2E {e2e / 2**20:.2f} MiB ({infopro / e2e:.2f}x)')


def main() -> None:
    args = parse_args()
    names = (['infopro', 'e2e'] if args.compare else
             ['e2e' if args.e2e else 'infopro'])
    print(f'[demo] dataset: {args.data_root} (built on first use from '
          "scikit-learn's digits and scikit-image's photos)")
    make_digits_segmentation(args.data_root)
    runners = {}
    for i, name in enumerate(names):
        work_dir = osp.join(REPO, 'work_dirs', f'demo_{name}')
        if args.work_dir:
            work_dir = args.work_dir + ('_e2e' if i else '')
        runners[name] = train(name, args, work_dir)
    png = osp.join(runners[names[0]].work_dir, 'demo.png')
    draw_grid(*predictions(runners, args.num_images), png)
    scores = ' | '.join(
        f'{"InfoPro K=2" if name == "infopro" else "E2E"} '
        f'{validation_metrics(runner).get("mIoU", float("nan")):.2f}'
        for name, runner in runners.items())
    print(f'\n[demo] mIoU: {scores} (background everywhere: '
          f'{majority_miou(args.data_root):.2f})')
    print(planner_memory())
    print(f'[demo] predictions: {png}')


if __name__ == '__main__':
    main()
