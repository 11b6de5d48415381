"""tools/train.py trains, checkpoints and resumes (torch >= 2.6 included)."""
import glob
import os.path as osp

import torch
from conftest import REPO, demo_data_options, run_tool

TOY = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')


def test_train_two_iterations_then_resume_to_four(tiny_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    data = f'train_dataloader.dataset.data_root={tiny_data}/imagenet ' \
        f'val_dataloader.dataset.data_root={tiny_data}/imagenet'
    run_tool('tools/train.py', TOY, '--work-dir', work_dir, '--cfg-options',
             'train_cfg.max_iters=2', *data.split())
    assert osp.exists(osp.join(work_dir, 'iter_2.pth'))
    assert not osp.exists(osp.join(work_dir, 'iter_4.pth'))

    run_tool('tools/train.py', TOY, '--work-dir', work_dir, '--resume',
             '--cfg-options', 'train_cfg.max_iters=4', *data.split())
    assert osp.exists(osp.join(work_dir, 'iter_4.pth'))
    logs = sorted(glob.glob(osp.join(work_dir, '*', '*.log')))
    resumed = open(logs[-1]).read()
    assert 'resumed epoch: 0, iter: 2' in resumed
    assert 'Iter(train) [3/4]' in resumed and 'Iter(train) [4/4]' in resumed
    assert 'Iter(train) [1/4]' not in resumed
    assert 'local1.loss_recon' in resumed and 'local1.loss_task' in resumed
    assert 'accuracy/top1' in resumed
    assert 'OpenMMLab packages: mmcv 2.1.0' in resumed


def test_auto_scale_lr(tiny_data, tmp_path):
    import subprocess
    import sys
    data = [
        f'{d}.dataset.data_root={tiny_data}/imagenet'
        for d in ('train_dataloader', 'val_dataloader')
    ]
    args = ['tools/train.py', TOY, '--work-dir', str(tmp_path / 'work'),
            '--auto-scale-lr', '--cfg-options', 'train_cfg.max_iters=1',
            *data]
    missing = subprocess.run([sys.executable, *args], cwd=REPO,
                             capture_output=True, text=True)
    assert missing.returncode != 0
    assert 'needs auto_scale_lr.base_batch_size' in missing.stderr
    result = run_tool(*args, 'auto_scale_lr.base_batch_size=8')
    log = result.stdout + result.stderr
    assert 'LR is set based on batch size of 8 and the current batch size ' \
        'is 4' in log


DEMO = osp.join(REPO,
                'configs/demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py')


def test_resumed_demo_run_is_the_uninterrupted_run(tiny_digits_seg,
                                                   tmp_path):
    # The demo as configured (2 persistent workers, dropout in the decode
    # head); mmengine's own Runner gives 168 of 200 tensors different here.
    options = [
        *demo_data_options(tiny_digits_seg), 'train_cfg.val_interval=100',
        'default_hooks.checkpoint.interval=2'
    ]
    whole, parts = str(tmp_path / 'whole'), str(tmp_path / 'parts')
    run_tool('tools/train.py', DEMO, '--work-dir', whole, '--cfg-options',
             'train_cfg.max_iters=4', *options)
    run_tool('tools/train.py', DEMO, '--work-dir', parts, '--cfg-options',
             'train_cfg.max_iters=2', *options)
    run_tool('tools/train.py', DEMO, '--work-dir', parts, '--resume',
             '--cfg-options', 'train_cfg.max_iters=4', *options)
    a = torch.load(osp.join(whole, 'iter_4.pth'), weights_only=False)
    b = torch.load(osp.join(parts, 'iter_4.pth'), weights_only=False)
    assert a['state_dict'].keys() == b['state_dict'].keys()
    for key, value in a['state_dict'].items():
        assert torch.equal(value, b['state_dict'][key]), key
    assert a['meta']['infopro_split'] == b['meta']['infopro_split']
