"""A small real-image segmentation set for the demo: handwritten digits
composited onto texture photographs.

The digits are scikit-learn's 8x8 handwritten digits (1797 real scans) and
the backgrounds are photographs shipped with scikit-image (``skimage.data``),
so the set is built offline from installed packages. Each pixel is labelled
``background`` or the digit (0-9) whose stroke covers it. Train and val use
disjoint digit scans.
"""
import json
import logging
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np
from mmengine.logging import print_log
from mmseg.datasets import BaseSegDataset
from PIL import Image

from infopro_mm.registry import DATASETS

__all__ = [
    'DigitsSegDataset', 'is_complete', 'make_digits_segmentation',
    'mark_complete', 'photographs'
]

CLASSES = ('background', ) + tuple(str(d) for d in range(10))
PALETTE = [[0, 0, 0]] + [[int(c) for c in np.random.default_rng(d).integers(
    40, 256, 3)] for d in range(10)]
TEXTURES = ('astronaut', 'brick', 'camera', 'chelsea', 'coffee', 'coins',
            'grass', 'gravel', 'moon', 'page', 'rocket', 'text')


@DATASETS.register_module()
class DigitsSegDataset(BaseSegDataset):
    """Digits-on-textures segmentation (11 classes), mmseg folder layout:
    ``img_dir/{split}/*.png`` and ``ann_dir/{split}/*.png``."""

    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, **kwargs) -> None:
        super().__init__(img_suffix='.png', seg_map_suffix='.png', **kwargs)


def photographs() -> list:
    """The :data:`TEXTURES` photographs of ``skimage.data`` as RGB uint8."""
    from skimage import data
    from skimage.color import gray2rgb
    images = []
    for name in TEXTURES:
        image = getattr(data, name)()
        if image.ndim == 2:
            image = gray2rgb(image)
        images.append(np.ascontiguousarray(image[..., :3]).astype(np.uint8))
    return images


def is_complete(root: str, settings: dict, files: Dict[str, int]) -> bool:
    """Whether a generated dataset under ``root`` is whole and as asked.

    ``root/.complete`` (written by :func:`mark_complete`) must record the
    same ``settings`` and every folder must hold its ``00000.png`` ...
    files. When something is wrong the log says what, ``.complete`` is
    removed and False is returned, so the caller rebuilds the set.

    Args:
        root (str): The dataset folder.
        settings (dict): The generator's arguments.
        files (dict[str, int]): Folder (relative to ``root``) -> number of
            images it must hold.
    """
    done = osp.join(root, '.complete')
    if not osp.exists(done):
        return False
    try:
        with open(done) as f:
            recorded = json.load(f)
    except ValueError:
        recorded = None  # written by an older version: counts decide
    problems = []
    if recorded is not None and recorded != settings:
        problems.append(f'built with {recorded}, asked for {settings}')
    for folder, count in files.items():
        present = set(os.listdir(osp.join(root, folder))) if osp.isdir(
            osp.join(root, folder)) else set()
        missing = [
            name for name in (f'{i:05d}.png' for i in range(count))
            if name not in present
        ]
        if missing:
            problems.append(f'{folder}: {len(missing)} of {count} files '
                            f'missing (e.g. {missing[0]})')
    if problems:
        print_log(
            f'{root} is not the dataset asked for ({"; ".join(problems)}): '
            'rebuilding it',
            logger='current',
            level=logging.WARNING)
        os.remove(done)
    return not problems


def mark_complete(root: str, settings: dict) -> None:
    """Record that ``root`` was built whole with ``settings``."""
    with open(osp.join(root, '.complete'), 'w') as f:
        json.dump(settings, f)


def _sample(rng: np.random.Generator, textures, digits, targets,
            size: int) -> Tuple[np.ndarray, np.ndarray]:
    texture = textures[rng.integers(len(textures))]
    h, w = texture.shape[:2]
    crop = int(rng.integers(size, min(h, w) // 2))
    y, x = rng.integers(0, h - crop), rng.integers(0, w - crop)
    image = np.asarray(
        Image.fromarray(texture[y:y + crop, x:x + crop]).resize(
            (size, size), Image.BILINEAR)).astype(np.float32) * 0.6
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        idx = int(rng.integers(len(digits)))
        side = int(rng.integers(3 * size // 8, 5 * size // 8))
        alpha = np.asarray(
            Image.fromarray((digits[idx] * 255 / 16).astype(np.uint8)).resize(
                (side, side), Image.BILINEAR)).astype(np.float32) / 255.
        top, left = rng.integers(0, size - side, size=2)
        color = rng.integers(0, 256, 3).astype(np.float32)
        window = image[top:top + side, left:left + side]
        window[:] = window * (1 - alpha[..., None]) + color * alpha[..., None]
        label[top:top + side, left:left + side][alpha > 0.3] = \
            targets[idx] + 1
    return image.clip(0, 255).astype(np.uint8), label


def make_digits_segmentation(root: str,
                             num_train: int = 600,
                             num_val: int = 120,
                             size: int = 64,
                             seed: int = 0) -> str:
    """Write the dataset under ``root`` (skipped when already complete).

    A set with missing files or other settings is rebuilt
    (:func:`is_complete`).

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 600.
        num_val (int): Validation images. Defaults to 120.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Random seed. Defaults to 0.

    Returns:
        str: ``root``.
    """
    settings = dict(num_train=num_train, num_val=num_val, size=size, seed=seed)
    files = {
        f'{kind}/{split}': count
        for kind in ('img_dir', 'ann_dir')
        for split, count in (('train', num_train), ('val', num_val))
    }
    if is_complete(root, settings, files):
        return root
    from sklearn.datasets import load_digits
    digits = load_digits()
    half = len(digits.images) // 2
    textures = photographs()
    rng = np.random.default_rng(seed)
    for split, count, scans in (('train', num_train, slice(0, half)),
                                ('val', num_val, slice(half, None))):
        os.makedirs(osp.join(root, 'img_dir', split), exist_ok=True)
        os.makedirs(osp.join(root, 'ann_dir', split), exist_ok=True)
        for i in range(count):
            image, label = _sample(rng, textures, digits.images[scans],
                                   digits.target[scans], size)
            Image.fromarray(image).save(
                osp.join(root, 'img_dir', split, f'{i:05d}.png'))
            Image.fromarray(label).save(
                osp.join(root, 'ann_dir', split, f'{i:05d}.png'))
    mark_complete(root, settings)
    return root
