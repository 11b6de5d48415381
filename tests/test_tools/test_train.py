"""tools/train.py trains, checkpoints and resumes (torch >= 2.6 included)."""
import glob
import os.path as osp

from conftest import REPO, run_tool

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
