"""tools/dataset_converters/cityscapes.py on Cityscapes-format polygons."""
import json

import numpy as np
from conftest import run_tool
from PIL import Image


def rect(label, x0, y0, x1, y1):
    return dict(label=label, polygon=[[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def test_polygons_become_the_train_id_maps(tmp_path):
    gt = tmp_path / 'gtFine' / 'val' / 'lindau'
    img = tmp_path / 'leftImg8bit' / 'val' / 'lindau'
    gt.mkdir(parents=True)
    img.mkdir(parents=True)
    stem = 'lindau_000000_000019'
    Image.new('RGB', (64, 32)).save(img / f'{stem}_leftImg8bit.png')
    objects = [
        rect('sky', 0, 0, 63, 9),
        rect('road', 0, 20, 31, 31),
        rect('car', 40, 16, 60, 28),
        rect('ego vehicle', 0, 30, 63, 31),  # not evaluated: 255
    ]
    (gt / f'{stem}_gtFine_polygons.json').write_text(
        json.dumps(dict(imgHeight=32, imgWidth=64, objects=objects)))
    result = run_tool('tools/dataset_converters/cityscapes.py',
                      str(tmp_path))
    assert '1/1' in result.stdout  # the progress bar
    label = np.asarray(Image.open(gt / f'{stem}_gtFine_labelTrainIds.png'))
    assert label.shape == (32, 64)
    assert label[5, 30] == 10  # sky
    assert label[25, 10] == 0  # road
    assert label[22, 50] == 13  # car
    assert label[31, 10] == 255  # ego vehicle
    assert label[14, 30] == 255  # unlabelled
    assert (tmp_path / 'val.txt').read_text() == f'lindau/{stem}\n'


def test_missing_polygons_is_an_error(tmp_path):
    import pytest
    with pytest.raises(AssertionError, match='no gtFine'):
        run_tool('tools/dataset_converters/cityscapes.py', str(tmp_path))
