"""tools/analysis/loss_balance.py: one row per local module, the ratio of
the weighted reconstruction and task gradients on the module output."""
import os.path as osp
import re

from conftest import REPO, run_tool

TOY = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')


def ratio(tiny_data, tmp_path, weights):
    result = run_tool(
        'tools/analysis/loss_balance.py', TOY, '--batches', '2',
        '--cfg-options',
        f'train_dataloader.dataset.data_root={tiny_data}/imagenet',
        f'work_dir={tmp_path}', 'randomness.seed=0', *weights)
    rows = [line for line in result.stdout.splitlines()
            if re.match(r'\| \d+ \|', line)]
    assert len(rows) == 1, result.stdout
    return float(rows[0].split('|')[-2])


def test_ratio_follows_the_loss_weights(tiny_data, tmp_path):
    base = ratio(tiny_data, tmp_path, ['model.loss_weights.recon=1.0'])
    doubled = ratio(tiny_data, tmp_path, ['model.loss_weights.recon=2.0'])
    assert base > 0 and abs(doubled / base - 2) < 0.01
