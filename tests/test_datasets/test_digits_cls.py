"""The accuracy proxy: determinism, disjoint digit scans, real loading."""
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from infopro_mm.datasets import (DigitsOnPhotosDataset,
                                 make_digits_classification, nuisance_labels)


@pytest.fixture(scope='module')
def proxy(tmp_path_factory):
    return make_digits_classification(
        str(tmp_path_factory.mktemp('proxy')), num_train=40, num_test=20)


def read(root, split):
    with open(osp.join(root, f'{split}.json')) as f:
        return json.load(f)


def test_same_seed_gives_the_same_set(proxy, tmp_path):
    again = make_digits_classification(
        str(tmp_path / 'again'), num_train=40, num_test=20)
    assert read(proxy, 'train') == read(again, 'train')
    for name in ('train/00007.png', 'test/00011.png'):
        with open(osp.join(proxy, name), 'rb') as a, \
                open(osp.join(again, name), 'rb') as b:
            assert a.read() == b.read()
    other = make_digits_classification(
        str(tmp_path / 'other'), num_train=40, num_test=20, seed=1)
    assert read(other, 'train') != read(proxy, 'train')


def test_train_and_test_use_disjoint_digit_scans(proxy):
    train = {d['scan'] for d in read(proxy, 'train')['data_list']}
    test = {d['scan'] for d in read(proxy, 'test')['data_list']}
    assert train and test and not train & test


def test_dataset_loads_images_labels_and_nuisances(proxy):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = DigitsOnPhotosDataset(
            data_root=proxy,
            ann_file='test.json',
            pipeline=[dict(type='PackInputs')])
    assert len(dataset) == 20
    sample = dataset[0]
    assert tuple(sample['inputs'].shape) == (3, 32, 32)
    info = read(proxy, 'test')['data_list'][0]
    assert int(sample['data_samples'].gt_label) == info['gt_label']
    backgrounds, num_bg = nuisance_labels(dataset, 'background')
    positions, num_pos = nuisance_labels(dataset, 'position')
    assert num_bg == 12 and num_pos == 16
    assert backgrounds[0] == info['background']
    assert 0 <= backgrounds.min() and backgrounds.max() < num_bg
    assert 0 <= positions.min() and positions.max() < num_pos
    assert dataset.get_data_info(0)['img'].dtype == np.uint8
