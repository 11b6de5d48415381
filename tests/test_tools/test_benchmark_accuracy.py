"""tools/analysis/benchmark_accuracy.py: methods read from the configs, a
tiny grid trained through tools/train.py, the table and its JSON."""
import argparse
import glob
import json
import os.path as osp
import sys

import pytest
from conftest import REPO, run_tool
from mmengine.config import Config

sys.path.insert(0, osp.join(REPO, 'tools/analysis'))
from benchmark_accuracy import (PROXY_OVERLAY, describe,  # noqa: E402
                                proxy_configs, run_config)

CIFAR = osp.join(REPO, 'configs/cifar10')


@pytest.mark.parametrize('network', ['resnet32', 'resnet110'])
def test_every_table2_row_is_recognised(network):
    seen = set()
    for path in glob.glob(osp.join(CIFAR, f'{network}_*_cifar10.py')):
        method, k = describe(Config.fromfile(path))
        name = osp.basename(path)
        expected = {
            'e2e': 'E2E',
            'greedy-sl': 'greedy SL',
            'dgl': 'DGL',
            'infopro-softmax': 'InfoPro (Softmax)',
            'infopro-contrast': 'InfoPro (Contrast)',
            'dgl-man': 'DGL + MAN',
            'infopro-man': 'InfoPro + MAN',
            'auglocal': 'AugLocal',
            'asy-infopro-softmax': 'Asy-InfoPro (Softmax)',
        }[name.split('_')[1]]
        assert method == expected, name
        assert k == (1 if expected == 'E2E' else int(
            name.split('_k')[1].split('_')[0])), name
        seen.add((method, k))
    # ResNet-32 also has the successors' rows (3 methods at K = 4, 8) and
    # Asy-InfoPro (Softmax) at K = 2, 4, 8
    assert len(seen) == {'resnet32': 26, 'resnet110': 17}[network]


def test_asynchronous_row_keeps_its_loop_on_the_proxy():
    row = osp.join(CIFAR, 'resnet32_asy-infopro-softmax_k4_cifar10.py')
    args = argparse.Namespace(cfg_options={})
    overlay = Config.fromfile(PROXY_OVERLAY)
    cfg = run_config(row, 0, args, overlay)
    assert describe(cfg) == ('Asy-InfoPro (Softmax)', 4)
    # every module gets the overlay's schedule
    assert cfg.train_cfg == dict(
        type='infopro_mm.AsynchronousTrainLoop',
        max_iters=overlay.max_iters,
        val_interval=overlay.val_interval)
    assert cfg.param_scheduler == overlay.param_scheduler
    plain = run_config(row.replace('asy-', ''), 0, args, overlay)
    assert plain.model == cfg.model
    assert plain.train_cfg.type == 'IterBasedTrainLoop'
    # an asynchronous method the table has no row for
    dgl = Config.fromfile(osp.join(CIFAR, 'resnet32_dgl_k4_cifar10.py'))
    dgl.train_cfg = cfg.train_cfg
    with pytest.raises(ValueError, match='DGL trained by Asynchronous'):
        describe(dgl)


def test_default_grid_is_the_resnet32_rows_at_k_2_4_8():
    configs = proxy_configs()
    assert len(configs) == 13 and all(osp.exists(c) for c in configs)
    assert {describe(Config.fromfile(c))[1] for c in configs} == {1, 2, 4, 8}


def test_tiny_grid_trains_and_reports(tmp_path):
    from infopro_mm.datasets import make_digits_classification
    root = make_digits_classification(
        str(tmp_path / 'proxy'), num_train=32, num_test=16)
    out = tmp_path / 'bench'
    configs = [
        osp.join(CIFAR, 'resnet32_e2e_cifar10.py'),
        osp.join(CIFAR, 'resnet32_infopro-contrast_k2_cifar10.py')
    ]
    args = [
        'tools/analysis/benchmark_accuracy.py', *configs, '--seeds', '0', '1',
        '--jobs', '2', '--proxy-root', root, '--out',
        str(out), '--name', 'tiny', '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=1', 'train_dataloader.batch_size=8',
        'default_hooks.logger.interval=1'
    ]
    result = run_tool(*args)
    assert 'E2E (K = 1)' in result.stdout
    assert 'InfoPro (Contrast)' in result.stdout
    with open(out / 'tiny.json') as f:
        report = json.load(f)
    rows = {(r['method'], r['num_modules']): r for r in report['rows']}
    assert set(rows) == {('E2E', 1), ('InfoPro (Contrast)', 2)}
    for row in rows.values():
        assert row['seeds'] == [0, 1] and len(row['errors']) == 2
        assert row['curve_steps'] == [1, 2]
    run = next(r for r in report['runs'] if r['num_modules'] == 2)
    assert 'local1.loss_task' in run['losses']
    assert osp.exists(out / 'tiny.png')
    # a second call trains nothing again
    stamps = sorted(glob.glob(str(out / 'runs' / '*' / 'seed0' / '2*')))
    run_tool(*args)
    assert sorted(glob.glob(str(out / 'runs' / '*' / 'seed0' /
                                '2*'))) == stamps


def test_asynchronous_row_trains_k_phases_and_reports_the_last_one(
        tmp_path):
    from infopro_mm.datasets import make_digits_classification
    root = make_digits_classification(
        str(tmp_path / 'proxy'), num_train=32, num_test=16)
    out = tmp_path / 'bench'
    run_tool('tools/analysis/benchmark_accuracy.py',
             osp.join(CIFAR, 'resnet32_asy-infopro-softmax_k2_cifar10.py'),
             '--seeds', '0', '--jobs', '1', '--proxy-root', root, '--out',
             str(out), '--name', 'asy', '--cfg-options',
             'train_cfg.max_iters=2', 'train_cfg.val_interval=1',
             'train_dataloader.batch_size=8')
    with open(out / 'asy.json') as f:
        report = json.load(f)
    run, = report['runs']
    assert (run['method'], run['num_modules']) == ('Asy-InfoPro (Softmax)',
                                                   2)
    # 2 phases of 2 iterations; validation in the last phase only
    assert [step for step, _ in run['curve']] == [3, 4]
    assert run['top1'] == run['curve'][-1][1]
    assert report['rows'][0]['curve_steps'] == [3, 4]
