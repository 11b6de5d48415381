"""Write tiny datasets in the real on-disk formats of the paper's datasets.

The tests (and anyone checking a config without the real data) train the
real OpenMMLab dataset classes and pipelines on them:

- Cityscapes: ``leftImg8bit/{train,val}/<city>/*_leftImg8bit.png`` and
  ``gtFine/{train,val}/<city>/*_gtFine_{labelTrainIds,labelIds}.png`` plus
  ``*_gtFine_polygons.json`` (what a real download contains).
- ImageNet: ``{train,val}/`` images and ``meta/{train,val}.txt`` (the
  annotation-file layout of mmpretrain's ``ImageNet`` dataset).
- COCO: ``{train,val}2017/*.jpg`` and
  ``annotations/instances_{train,val}2017.json``.
- CIFAR-10: ``cifar-10-batches-py/data_batch_1..5``, ``test_batch`` and
  ``batches.meta``, the python-pickle release that mmpretrain's ``CIFAR10``
  reads. That class checks every file against the md5 sums of the real
  release (with or without ``download=True``), which no tiny set can match:
  whoever loads this set must clear the expected sums of the real class
  first (``CIFAR10.train_list``/``test_list`` entries ``[name, None]``, the
  class's own "no checksum" form); see tests/test_configs.

Images hold coloured shapes whose labels are the pixels/boxes they cover, so
a few iterations already learn something measurable.

Usage: python tools/misc/make_tiny_datasets.py OUT_DIR [--num-images N]
"""
import argparse
import json
import os
import os.path as osp
import pickle
from typing import List, Tuple

import numpy as np
from PIL import Image

# Cityscapes trainId -> labelId of the 19 evaluated classes.
CITYSCAPES_LABEL_IDS = [
    7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33
]
CITYSCAPES_NAMES = [
    'road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light',
    'traffic sign', 'vegetation', 'terrain', 'sky', 'person', 'rider', 'car',
    'truck', 'bus', 'train', 'motorcycle', 'bicycle'
]


def _shapes(rng: np.random.Generator, height: int, width: int,
            num_classes: int,
            count: int) -> Tuple[np.ndarray, List[Tuple[int, List[int]]]]:
    """An RGB image of rectangles and, per rectangle, (class, box)."""
    palette = np.random.default_rng(1234).integers(
        0, 256, (num_classes, 3), dtype=np.uint8)
    image = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    shapes = []
    for _ in range(count):
        cls = int(rng.integers(num_classes))
        h = int(rng.integers(height // 4, height // 2 + 1))
        w = int(rng.integers(width // 4, width // 2 + 1))
        y, x = int(rng.integers(0, height - h)), int(rng.integers(0, width - w))
        image[y:y + h, x:x + w] = palette[cls]
        shapes.append((cls, [x, y, w, h]))
    return image, shapes


def make_cityscapes(root: str, num_images: int, size=(64, 128)) -> None:
    """Tiny Cityscapes with train/val splits and the real file suffixes."""
    rng = np.random.default_rng(0)
    height, width = size
    for split, city in (('train', 'aachen'), ('val', 'frankfurt')):
        img_dir = osp.join(root, 'leftImg8bit', split, city)
        gt_dir = osp.join(root, 'gtFine', split, city)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(gt_dir, exist_ok=True)
        for i in range(num_images):
            stem = f'{city}_{i:06d}_000019'
            image, shapes = _shapes(rng, height, width, 19, 4)
            train_ids = np.full((height, width), 255, dtype=np.uint8)
            train_ids[height // 2:, :] = 0  # road below the horizon
            objects = []
            for cls, (x, y, w, h) in shapes:
                train_ids[y:y + h, x:x + w] = cls
            for cls in np.unique(train_ids):
                if cls == 255:
                    continue
                ys, xs = np.nonzero(train_ids == cls)
                objects.append(
                    dict(
                        label=CITYSCAPES_NAMES[cls],
                        polygon=[[int(xs.min()), int(ys.min())],
                                 [int(xs.max()) + 1, int(ys.min())],
                                 [int(xs.max()) + 1, int(ys.max()) + 1],
                                 [int(xs.min()), int(ys.max()) + 1]]))
            image[train_ids == 0] = (128, 64, 128)
            label_ids = np.zeros_like(train_ids)
            for train_id, label_id in enumerate(CITYSCAPES_LABEL_IDS):
                label_ids[train_ids == train_id] = label_id
            Image.fromarray(image).save(
                osp.join(img_dir, f'{stem}_leftImg8bit.png'))
            Image.fromarray(train_ids).save(
                osp.join(gt_dir, f'{stem}_gtFine_labelTrainIds.png'))
            Image.fromarray(label_ids).save(
                osp.join(gt_dir, f'{stem}_gtFine_labelIds.png'))
            with open(osp.join(gt_dir, f'{stem}_gtFine_polygons.json'),
                      'w') as f:
                json.dump(
                    dict(imgHeight=height, imgWidth=width, objects=objects),
                    f)


def make_imagenet(root: str, num_images: int, size: int = 48,
                  num_classes: int = 4) -> None:
    """Tiny ImageNet in the annotation-file layout (classes 0..n-1)."""
    rng = np.random.default_rng(1)
    palette = np.random.default_rng(1234).integers(
        0, 256, (num_classes, 3), dtype=np.uint8)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    for split in ('train', 'val'):
        lines = []
        for i in range(num_images):
            cls = i % num_classes
            image, _ = _shapes(rng, size, size, num_classes, 0)
            # the class decides the colour of a large central square
            image[size // 4:3 * size // 4, size // 4:3 * size // 4] = \
                palette[cls]
            if split == 'train':
                wnid = f'n{cls:08d}'
                rel = f'{wnid}/{wnid}_{i}.JPEG'
            else:
                rel = f'ILSVRC2012_val_{i + 1:08d}.JPEG'
            os.makedirs(osp.dirname(osp.join(root, split, rel)),
                        exist_ok=True)
            Image.fromarray(image).save(
                osp.join(root, split, rel), format='JPEG', quality=95)
            lines.append(f'{rel} {cls}\n')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(lines)


def make_coco(root: str, num_images: int, size=(96, 128),
              num_classes: int = 80) -> None:
    """Tiny COCO 2017 detection (instances JSON with the 80 categories)."""
    from mmdet.datasets import CocoDataset
    rng = np.random.default_rng(2)
    names = CocoDataset.METAINFO['classes']
    cat_ids = _coco_category_ids()
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    ann_id = 1
    for split in ('train2017', 'val2017'):
        os.makedirs(osp.join(root, split), exist_ok=True)
        images, annotations = [], []
        for i in range(num_images):
            image_id = i + 1
            image, shapes = _shapes(rng, *size, num_classes, 3)
            file_name = f'{image_id:012d}.jpg'
            Image.fromarray(image).save(
                osp.join(root, split, file_name), quality=95)
            images.append(
                dict(id=image_id, file_name=file_name, height=size[0],
                     width=size[1]))
            for cls, box in shapes:
                annotations.append(
                    dict(id=ann_id, image_id=image_id,
                         category_id=cat_ids[cls], bbox=box,
                         area=box[2] * box[3], iscrowd=0,
                         segmentation=[[box[0], box[1], box[0] + box[2],
                                        box[1], box[0] + box[2],
                                        box[1] + box[3], box[0],
                                        box[1] + box[3]]]))
                ann_id += 1
        categories = [
            dict(id=cat_ids[i], name=names[i]) for i in range(num_classes)
        ]
        with open(osp.join(root, 'annotations', f'instances_{split}.json'),
                  'w') as f:
            json.dump(
                dict(images=images, annotations=annotations,
                     categories=categories), f)


def make_cifar10(root: str, num_images: int, num_classes: int = 2) -> None:
    """Tiny CIFAR-10 in the python-pickle layout of the real release.

    Writes ``cifar-10-batches-py/`` with ``data_batch_1`` ..
    ``data_batch_5`` (the ``num_images`` training images spread over the
    five files), ``test_batch`` (``num_images`` images) and
    ``batches.meta``. Each batch file is a protocol-2 pickle of a dict with
    ``batch_label``, ``labels`` (list of int), ``data`` (uint8
    ``(N, 3072)``: the red, green and blue 32x32 planes of each image, row
    by row) and ``filenames``, as in the real files.

    Labels cycle through the first ``num_classes`` CIFAR-10 classes (the
    default 2 puts positive pairs in every test batch of 4, which the
    supervised contrastive loss needs); the class decides the colour of a
    large central square, so a few iterations learn something.

    Args:
        root (str): The dataset root (``data_root`` of the configs).
        num_images (int): Training images, and test images.
        num_classes (int): Classes used, at most 10. Defaults to 2.
    """
    rng = np.random.default_rng(3)
    palette = np.random.default_rng(1234).integers(
        0, 256, (num_classes, 3), dtype=np.uint8)
    folder = osp.join(root, 'cifar-10-batches-py')
    os.makedirs(folder, exist_ok=True)

    def batch(label: str, indices) -> dict:
        labels, rows, names = [], [], []
        for i in indices:
            cls = int(i % num_classes)
            image, _ = _shapes(rng, 32, 32, num_classes, 0)
            image[8:24, 8:24] = palette[cls]
            labels.append(cls)
            rows.append(image.transpose(2, 0, 1).reshape(-1))  # CHW planes
            names.append(f'tiny_{label.replace(" ", "_")}_{i}.png')
        data = (np.stack(rows) if rows else np.zeros(
            (0, 3072), dtype=np.uint8))
        return dict(batch_label=label, labels=labels, data=data,
                    filenames=names)

    files = {
        f'data_batch_{k + 1}':
        batch(f'training batch {k + 1} of 5', part)
        for k, part in enumerate(np.array_split(np.arange(num_images), 5))
    }
    files['test_batch'] = batch('testing batch 1 of 1', range(num_images))
    files['batches.meta'] = dict(
        num_cases_per_batch=max(1, -(-num_images // 5)),
        label_names=[
            'airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog',
            'horse', 'ship', 'truck'
        ],
        num_vis=3072)
    for name, content in files.items():
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump(content, f, protocol=2)


def _coco_category_ids() -> List[int]:
    """The 80 COCO category ids (1..90 with the 10 unused ids skipped)."""
    unused = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
    return [i for i in range(1, 91) if i not in unused]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='where cityscapes/, imagenet/, '
                        'coco/, cifar10/ are written')
    parser.add_argument('--num-images', type=int, default=4,
                        help='images per split')
    args = parser.parse_args()
    make_cityscapes(osp.join(args.out_dir, 'cityscapes'), args.num_images)
    make_imagenet(osp.join(args.out_dir, 'imagenet'), args.num_images)
    make_coco(osp.join(args.out_dir, 'coco'), args.num_images)
    make_cifar10(osp.join(args.out_dir, 'cifar10'), args.num_images)
    print(f'tiny datasets written to {args.out_dir}')


if __name__ == '__main__':
    main()
