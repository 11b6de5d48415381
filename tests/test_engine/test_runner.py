"""InfoProRunner: which checkpoint a resume takes and what it refuses."""
import os
import os.path as osp
import shutil

import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import RUNNERS

from infopro_mm.engine import CheckpointReadError, ResumeError

TOY = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')


def build_runner(work_dir, tiny_data, **options):
    cfg = Config.fromfile(TOY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = f'{tiny_data}/imagenet'
    cfg.merge_from_dict(options)
    cfg.work_dir = str(work_dir)
    cfg.runner_type = 'infopro_mm.InfoProRunner'
    return RUNNERS.build(cfg)


def save(runner, path, **meta):
    torch.save(dict(meta=meta, state_dict=runner.model.state_dict()), path)
    return str(path)


def truncate(path):
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.truncate(size // 2)


def warnings_of(runner):
    """Warnings the runner's logger gives from now on."""
    messages = []
    original = runner.logger.warning

    def warning(msg, *args, **kwargs):
        messages.append(msg)
        return original(msg, *args, **kwargs)

    runner.logger.warning = warning
    return messages


def test_truncated_latest_falls_back_to_the_newest_good_one(
        tiny_data, tmp_path):
    work = tmp_path / 'work'
    runner = build_runner(work, tiny_data)
    logs = warnings_of(runner)
    good = save(runner, work / 'iter_2.pth')
    bad = save(runner, work / 'iter_4.pth')
    truncate(bad)
    size = os.path.getsize(bad)
    (work / 'last_checkpoint').write_text(bad)
    assert runner._checkpoint_to_resume() == good
    assert any(f'cannot read checkpoint {bad}' in m for m in logs)
    assert any(f'resuming from {good}' in m for m in logs)
    # a named file that cannot be read: refused, the good one named
    with pytest.raises(CheckpointReadError,
                       match=f'newest readable checkpoint in {work} is '
                       f'{good}'):
        runner.resume(bad)
    # nothing was removed or rewritten
    assert {'iter_2.pth', 'iter_4.pth'} <= set(os.listdir(work))
    assert (work / 'last_checkpoint').read_text() == bad
    assert os.path.getsize(bad) == size


def test_missing_latest_falls_back(tiny_data, tmp_path):
    work = tmp_path / 'work'
    runner = build_runner(work, tiny_data)
    good = save(runner, work / 'iter_2.pth')
    (work / 'last_checkpoint').write_text(str(work / 'iter_6.pth'))
    assert runner._checkpoint_to_resume() == good
    # best_* checkpoints (no optimizer state) are never resumed from
    save(runner, work / 'best_accuracy_top1_iter_8.pth')
    assert runner._checkpoint_to_resume() == good


def test_copied_work_dir_resumes_from_its_own_files(tiny_data, tmp_path):
    original = tmp_path / 'original'
    runner = build_runner(original, tiny_data)
    path = save(runner, original / 'iter_2.pth')
    (original / 'last_checkpoint').write_text(path)
    copy = tmp_path / 'copy'
    shutil.copytree(original, copy)
    runner = build_runner(copy, tiny_data)
    logs = warnings_of(runner)
    assert runner._checkpoint_to_resume() == str(copy / 'iter_2.pth')
    assert any('outside this work dir' in m for m in logs)
    # without a copy of the file: refused, with the explicit command
    os.remove(copy / 'iter_2.pth')
    with pytest.raises(ResumeError, match=f'--resume {path}'):
        runner._checkpoint_to_resume()


def test_resume_with_another_split_is_refused(tiny_data, tmp_path):
    work = tmp_path / 'work'
    runner = build_runner(work, tiny_data)
    path = save(runner, work / 'iter_2.pth',
                infopro_split=runner.model.split_meta())
    other = build_runner(tmp_path / 'other', tiny_data,
                         **{'model.split.boundaries': ['layer3.0']})
    with pytest.raises(ResumeError) as info:
        other.resume(path)
    message = str(info.value)
    assert "'boundaries': ['layer2.0']" in message
    assert "'boundaries': ['layer3.0']" in message


def test_misspelt_train_cfg_key_names_the_valid_one(tiny_data, tmp_path):
    runner = build_runner(tmp_path / 'work', tiny_data,
                          **{'train_cfg.max_iter': 2})
    with pytest.raises(TypeError, match=r'`max_iter` \(did you mean '
                       '`max_iters`'):
        runner.train()


@pytest.mark.parametrize('option, applies, expected', [
    (None, True, 'kept' if not torch.cuda.is_available() else None),
    (False, True, None),
    (True, True, 'kept'),
    (True, False, 'needs glibc'),
])
def test_host_memory_is_retained_without_a_gpu(tiny_data, tmp_path,
                                               monkeypatch, option, applies,
                                               expected):
    calls = []
    monkeypatch.setattr('infopro_mm.engine.runner.retain_host_memory',
                        lambda: calls.append(1) or applies)
    # a logger of its own (mmengine reuses one per name), so its own file
    options = dict(experiment_name=f'retain-{option}-{applies}')
    if option is not None:
        options['env_cfg.retain_host_memory'] = option
    runner = build_runner(tmp_path / 'work', tiny_data, **options)
    assert len(calls) == (expected is not None)
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    assert ('freed blocks are kept for reuse' in log) == (expected == 'kept')
    assert ('retain_host_memory needs glibc' in log) == (
        expected == 'needs glibc')
