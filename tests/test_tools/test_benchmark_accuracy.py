"""tools/analysis/benchmark_accuracy.py: methods read from the configs, a
tiny grid trained through tools/train.py, the table and its JSON."""
import glob
import json
import os.path as osp
import sys

import pytest
from conftest import REPO, run_tool
from mmengine.config import Config

sys.path.insert(0, osp.join(REPO, 'tools/analysis'))
from benchmark_accuracy import describe, proxy_configs  # noqa: E402

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
        }[name.split('_')[1]]
        assert method == expected, name
        assert k == (1 if expected == 'E2E' else int(
            name.split('_k')[1].split('_')[0])), name
        seen.add((method, k))
    # ResNet-32 also has the successors' rows (3 methods at K = 4, 8)
    assert len(seen) == {'resnet32': 23, 'resnet110': 17}[network]


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
