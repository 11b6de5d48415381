"""tools/dist_train.sh: the card's Cityscapes config and the module-parallel
demo config, on 2 CPU processes (and 4: 2 stages x 2 replicas)."""
import glob
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, demo_data_options, free_port, run_tool

CONFIG = 'configs/deeplabv3_r101_infopro_k2_cityscapes.py'
BN = dict(type='BN', requires_grad=True)


def test_dist_train_two_processes_on_tiny_cityscapes(tiny_data, tmp_path):
    # SyncBN refuses CPU tensors under a process group: BN for this run.
    norms = [
        f'{m}.norm_cfg.type=BN' for m in (
            'model.architecture.backbone', 'model.architecture.decode_head',
            'model.architecture.auxiliary_head', 'model.local_heads.recon',
            'model.local_heads.task')
    ]
    config = tmp_path / 'dist.py'
    config.write_text(
        f"_base_ = ['{REPO}/{CONFIG}']\n"
        "custom_hooks = [dict(type='infopro_mm.InfoProHook'),\n"
        "    dict(type='infopro_mm.InfoProConsistencyHook', interval=1)]\n")
    root = tiny_data / 'cityscapes'
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [
        *[f'{d}.dataset.data_root={root}' for d in loaders],
        *[f'{d}.num_workers=0' for d in loaders],
        *[f'{d}.persistent_workers=False' for d in loaders],
        'train_dataloader.batch_size=2', 'val_dataloader.batch_size=1',
        'train_dataloader.dataset.pipeline.2.scale=(128,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'val_dataloader.dataset.pipeline.1.scale=(128,64)',
        'data_preprocessor.size=(64,64)', 'model.architecture.pretrained=None',
        'train_cfg.max_iters=3', 'train_cfg.val_interval=3',
        'default_hooks.checkpoint.interval=3',
        'default_hooks.logger.interval=1', 'env_cfg.dist_cfg.backend=gloo',
        *norms
    ]
    # The README's command as written: the script finds .venv itself.
    env = dict(os.environ, PORT=str(free_port()))
    env.pop('PYTHON', None)
    if not os.path.exists(os.path.join(REPO, '.venv', 'bin', 'python')):
        env['PYTHON'] = sys.executable
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir',
         str(work_dir), '--cfg-options', *options],
        cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + \
        result.stderr[-4000:]
    logs = glob.glob(str(work_dir / '*' / '*.log'))
    assert len(logs) == 1  # rank 0 only
    log = open(logs[0]).read()
    assert 'Distributed training: True' in log and 'GPU number: 2' in log
    assert 'Iter(train) [3/3]' in log and 'mIoU: ' in log
    assert 'local1.loss_recon' in log
    assert sorted(os.listdir(work_dir)).count('iter_3.pth') == 1


MP_CONFIG = 'configs/demo/deeplabv3_r18-d8_infopro-k2-mp_digits-64x64.py'


def _mious(text):
    return [float(m) for m in re.findall(r'mIoU: ([\d.]+)', text)]


@pytest.mark.parametrize('processes', [2, 4], ids=['k2', 'k2x2'])
def test_module_parallel_demo_trains_tests_and_resumes(tiny_digits_seg,
                                                       tmp_path, processes):
    """The shipped module-parallel config on CPU processes, 2 (one
    pipeline) and 4 (2 stages x 2 replicas): it trains, validates, writes a
    single-model checkpoint that tools/test.py (one process) evaluates to
    the validated mIoU, and resumes."""
    loaders = ('train_dataloader', 'val_dataloader', 'test_dataloader')
    options = [
        *demo_data_options(tiny_digits_seg),
        *[f'{d}.num_workers=0' for d in loaders],
        *[f'{d}.persistent_workers=False' for d in loaders],
        'train_dataloader.batch_size=4', 'val_dataloader.batch_size=1',
        'default_hooks.logger.interval=1', 'env_cfg.dist_cfg.backend=gloo'
    ]
    env = dict(os.environ)
    env.pop('PYTHON', None)
    if not os.path.exists(os.path.join(REPO, '.venv', 'bin', 'python')):
        env['PYTHON'] = sys.executable
    work_dir = tmp_path / 'work'

    def train(iters, *extra):
        env['PORT'] = str(free_port())
        result = subprocess.run(
            ['bash', 'tools/dist_train.sh', MP_CONFIG, str(processes),
             '--work-dir',
             str(work_dir), *extra, '--cfg-options', *options,
             f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
             f'default_hooks.checkpoint.interval={iters}'],
            cwd=REPO, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout[-4000:] + \
            result.stderr[-4000:]
        logs = sorted(glob.glob(str(work_dir / '*' / '*.log')))
        return open(logs[-1]).read()

    log = train(4)
    assert 'Iter(train) [4/4]' in log
    assert f'K=2 stages x D={processes // 2} replicas' in log
    # every stage's losses are logged on rank 0
    assert 'local1.loss_recon' in log and 'decode.loss_ce' in log
    validated = _mious(log)[-1]
    tested = run_tool('tools/test.py', MP_CONFIG,
                      str(work_dir / 'iter_4.pth'), '--work-dir',
                      str(tmp_path / 'test'), '--cfg-options', *options)
    assert _mious(tested.stdout + tested.stderr)[-1] == validated
    log = train(6, '--resume')
    assert 'Iter(train) [6/6]' in log and 'resumed' in log.lower()
    assert os.path.exists(work_dir / 'iter_6.pth')
