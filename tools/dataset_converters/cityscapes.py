"""Turn a Cityscapes download into the label maps mmseg trains on.

Writes ``*_gtFine_labelTrainIds.png`` beside every
``gtFine/<split>/<city>/*_gtFine_polygons.json`` with cityscapesscripts
(19 evaluated classes, 255 = ignored) and lists the image stems of each
split in ``<split>.txt``.

Usage: python tools/dataset_converters/cityscapes.py CITYSCAPES_ROOT
       [--nproc N]
"""
import argparse
import glob
import os.path as osp
from typing import List

from mmengine.utils import track_parallel_progress, track_progress


def convert_json_to_label(json_file: str) -> str:
    """Write the trainId label map of one polygon file; returns its path."""
    from cityscapesscripts.preparation.json2labelImg import json2labelImg
    label_file = json_file.replace('_polygons.json', '_labelTrainIds.png')
    json2labelImg(json_file, label_file, 'trainIds')
    return label_file


def convert(root: str, nproc: int = 1) -> List[str]:
    """Convert every polygon file under ``root/gtFine``.

    Shows a progress bar on stdout.

    Args:
        root (str): The Cityscapes root (with ``leftImg8bit/``, ``gtFine/``).
        nproc (int): Worker processes. Defaults to 1.

    Returns:
        list[str]: The label maps written.
    """
    jsons = sorted(
        glob.glob(osp.join(root, 'gtFine', '*', '*', '*_polygons.json')))
    if not jsons:
        raise FileNotFoundError(
            f'no gtFine/<split>/<city>/*_gtFine_polygons.json under {root}')
    # a progress bar: ~5,000 files take minutes
    if nproc > 1:
        labels = track_parallel_progress(convert_json_to_label, jsons, nproc)
    else:
        labels = track_progress(convert_json_to_label, jsons)
    for split in sorted({osp.relpath(f, root).split(osp.sep)[1]
                         for f in jsons}):
        stems = sorted(
            osp.relpath(f, osp.join(root, 'leftImg8bit', split)).replace(
                '_leftImg8bit.png', '')
            for f in glob.glob(
                osp.join(root, 'leftImg8bit', split, '*',
                         '*_leftImg8bit.png')))
        with open(osp.join(root, f'{split}.txt'), 'w') as f:
            f.writelines(stem + '\n' for stem in stems)
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='Cityscapes root folder')
    parser.add_argument('--nproc', type=int, default=1,
                        help='worker processes')
    args = parser.parse_args()
    labels = convert(args.root, args.nproc)
    print(f'wrote {len(labels)} *_gtFine_labelTrainIds.png under '
          f'{args.root}/gtFine')


if __name__ == '__main__':
    main()
