"""The offline accuracy proxy: handwritten digits on photographs.

After the paper's own toy (Appendix A, MNIST digits on STL-10 backgrounds):
scikit-learn's 1797 real 8x8 digit scans, composited at one of a grid of
positions onto crops of the photographs shipped with scikit-image. The label
is the digit; the photograph and the position are recorded as *nuisance*
labels (task-irrelevant information, paper §3) for the information probes.
Train and test use disjoint digit scans, so test accuracy measures
generalisation to unseen handwriting, not memorisation.

On disk it is mmpretrain's annotation-file layout in the OpenMMLab 2.0 JSON
format: ``{train,test}/*.png`` and ``{train,test}.json`` holding
``metainfo`` and a ``data_list`` of ``img_path``, ``gt_label``,
``background`` and ``position``.
"""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np
from mmpretrain.datasets import BaseDataset
from PIL import Image

from infopro_mm.registry import DATASETS
from .digits_seg import TEXTURES, is_complete, mark_complete, photographs

__all__ = [
    'DigitsOnPhotosDataset', 'make_digits_classification', 'nuisance_labels'
]

CLASSES = tuple(str(d) for d in range(10))


@DATASETS.register_module()
class DigitsOnPhotosDataset(BaseDataset):
    """Digits-on-photographs classification (10 classes).

    The images are tiny, so they are decoded once when the annotation file
    is loaded and kept in memory as RGB arrays (``img`` of each sample, as
    mmpretrain's ``CIFAR10`` does): pipelines start without
    ``LoadImageFromFile``, and a training step is not slowed by PNG
    decoding.

    Args:
        ann_file (str): ``train.json`` or ``test.json`` (relative to
            ``data_root``).
        **kwargs: Passed to mmpretrain's ``BaseDataset`` (``data_root``,
            ``pipeline``, ``test_mode``, ...).
    """

    METAINFO = dict(classes=CLASSES)

    def __init__(self, ann_file: str, **kwargs) -> None:
        super().__init__(ann_file=ann_file, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Annotations with every image decoded (``img``, RGB uint8)."""
        data_list = super().load_data_list()
        for info in data_list:
            with Image.open(info['img_path']) as image:
                info['img'] = np.asarray(image.convert('RGB'))
            info['img_shape'] = info['ori_shape'] = info['img'].shape[:2]
        return data_list


def _grid(size: int, side: int, cells: int) -> List[int]:
    """Top-left offsets of ``cells`` evenly spaced positions on one axis."""
    return [int(round(i * (size - side) / (cells - 1))) for i in range(cells)]


def _compose(rng: np.random.Generator, photos, scan: np.ndarray,
             position: int, background: int, size: int,
             grid: int) -> np.ndarray:
    """One image: a darkened photo crop with a light digit at ``position``.

    Light strokes on a darker photograph, as the paper's white MNIST digits
    on STL-10 images: with strokes of random colour (darker or lighter than
    the photo) end-to-end training sat at chance for hundreds of steps.
    """
    photo = photos[background]
    h, w = photo.shape[:2]
    crop = int(rng.integers(size, min(h, w) // 2))
    y, x = rng.integers(0, h - crop), rng.integers(0, w - crop)
    image = np.asarray(
        Image.fromarray(photo[y:y + crop, x:x + crop]).resize(
            (size, size), Image.BILINEAR)).astype(np.float32)
    image *= rng.uniform(0.3, 0.7)
    side = size // 2
    alpha = np.asarray(
        Image.fromarray((scan * 255 / 16).astype(np.uint8)).resize(
            (side, side), Image.BILINEAR)).astype(np.float32) / 255.
    alpha *= rng.uniform(0.6, 1.0)
    offsets = _grid(size, side, grid)
    top, left = offsets[position // grid], offsets[position % grid]
    color = 255. - rng.integers(0, 60, 3).astype(np.float32)
    window = image[top:top + side, left:left + side]
    window[:] = window * (1 - alpha[..., None]) + color * alpha[..., None]
    return image.clip(0, 255).astype(np.uint8)


def make_digits_classification(root: str,
                               num_train: int = 5000,
                               num_test: int = 2000,
                               size: int = 32,
                               grid: int = 4,
                               seed: int = 0) -> str:
    """Write the proxy under ``root`` (skipped when already complete).

    The first half of scikit-learn's digit scans make the training images,
    the second half the test images. Each image draws a scan, a photograph
    (:data:`~infopro_mm.datasets.digits_seg.TEXTURES`), a random crop and
    brightness of it, one of ``grid * grid`` positions, a light stroke
    colour and an opacity, all from one seeded generator, so the set is the
    same on every machine with the pinned packages.

    Args:
        root (str): Output folder.
        num_train (int): Training images. Defaults to 5000.
        num_test (int): Test images. Defaults to 2000.
        size (int): Image side in pixels; the digit is ``size // 2``
            (8x8 scans shown at their own resolution at 16, upsampled
            bilinearly above). Defaults to 32 (CIFAR's size).
        grid (int): Positions per axis (nuisance ``position`` has
            ``grid ** 2`` values). Defaults to 4.
        seed (int): Random seed. Defaults to 0.

    Returns:
        str: ``root``.
    """
    settings = dict(
        num_train=num_train,
        num_test=num_test,
        size=size,
        grid=grid,
        seed=seed)
    if is_complete(root, settings, dict(train=num_train, test=num_test)) \
            and all(osp.exists(osp.join(root, f'{split}.json'))
                    for split in ('train', 'test')):
        return root
    from sklearn.datasets import load_digits
    digits = load_digits()
    half = len(digits.images) // 2
    photos = photographs()
    rng = np.random.default_rng(seed)
    metainfo = dict(
        classes=list(CLASSES),
        backgrounds=list(TEXTURES),
        num_positions=grid * grid,
        image_size=size)
    for split, count, scans in (('train', num_train, range(0, half)),
                                ('test', num_test,
                                 range(half, len(digits.images)))):
        os.makedirs(osp.join(root, split), exist_ok=True)
        data_list = []
        for i in range(count):
            scan = int(rng.choice(scans))
            background = int(rng.integers(len(photos)))
            position = int(rng.integers(grid * grid))
            image = _compose(rng, photos, digits.images[scan], position,
                             background, size, grid)
            path = f'{split}/{i:05d}.png'
            Image.fromarray(image).save(osp.join(root, path))
            data_list.append(
                dict(
                    img_path=path,
                    gt_label=int(digits.target[scan]),
                    background=background,
                    position=position,
                    scan=scan))
        with open(osp.join(root, f'{split}.json'), 'w') as f:
            json.dump(dict(metainfo=metainfo, data_list=data_list), f)
    mark_complete(root, settings)
    return root


def nuisance_labels(dataset: BaseDataset, key: str) -> Tuple[np.ndarray, int]:
    """A nuisance label of every sample and its number of values.

    Args:
        dataset (BaseDataset): A :class:`DigitsOnPhotosDataset`.
        key (str): ``'background'`` or ``'position'``.

    Returns:
        tuple[np.ndarray, int]: Labels ``(N,)`` and the class count.
    """
    labels = np.array(
        [dataset.get_data_info(i)[key] for i in range(len(dataset))])
    count = (len(dataset.metainfo['backgrounds'])
             if key == 'background' else dataset.metainfo['num_positions'])
    return labels, int(count)
