"""AsynchronousTrainLoop through the real runner: K phases, one module each,
schedulers and momentum restarted, validation at the end, resume mid-phase.
"""
import pytest
import torch
from mmengine.hooks import Hook
from test_runner import build_runner

# K = 3 on the toy model; 2 iterations per module
SPLIT = {'model.split.boundaries': ['layer1.1', 'layer2.0']}


def asy_options(max_iters=2, **loop):
    return dict(
        train_cfg=dict(
            _delete_=True,
            type='infopro_mm.AsynchronousTrainLoop',
            max_iters=max_iters,
            val_interval=2,
            **loop),
        # no `end`: the loop ends it with the phase
        param_scheduler=[
            dict(type='LinearLR', start_factor=0.5, by_epoch=False)
        ])


class Recorder(Hook):
    """What every iteration starts with, and which modules it changed."""

    def __init__(self):
        self.iters, self.active, self.lrs, self.states = [], [], [], []
        self.changed, self.validated = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        optimizer = runner.optim_wrapper.optimizer
        self.iters.append(runner.iter)
        self.active.append(runner.model.active_module)
        self.lrs.append(optimizer.param_groups[0]['lr'])
        self.states.append(len(optimizer.state))
        self.before = [[p.detach().clone() for p in group]
                       for group in runner.model.module_parameters()]

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.changed.append([
            j for j, (old, group) in enumerate(
                zip(self.before, runner.model.module_parameters()))
            if any(not torch.equal(a, p) for a, p in zip(old, group))
        ])

    def after_val_epoch(self, runner, metrics=None):
        self.validated.append(runner.iter)


def train(runner):
    recorder = Recorder()
    runner.register_hook(recorder)
    runner.train()
    return recorder


def test_phases_train_one_module_each_and_validate_at_the_end(
        tiny_data, tmp_path):
    runner = build_runner(tmp_path / 'work', tiny_data, **SPLIT,
                          **asy_options())
    logs = []
    info = runner.logger.info
    runner.logger.info = lambda msg, *a, **k: (logs.append(msg),
                                               info(msg, *a, **k))
    rec = train(runner)
    assert rec.iters == [0, 1, 2, 3, 4, 5]
    assert rec.active == [0, 0, 1, 1, 2, 2]
    # each module changes in its own phase only
    assert rec.changed == [[0], [0], [1], [1], [2], [2]]
    # every phase gets the whole warm-up (lr 0.01 x 0.5 -> 1 in 2 steps)
    assert rec.lrs == pytest.approx([0.005, 0.01] * 3)
    # momentum is cleared when a phase starts
    assert rec.states[2] == rec.states[4] == 0 < rec.states[3]
    assert rec.validated == [6]
    assert any('Asy-InfoPro: 3 phases of 2 iterations (6 in all)' in m and
               'no validation before the last phase' in m for m in logs)
    assert any('phase 3/3 starts at iteration 4' in m for m in logs)


def test_resume_mid_phase_continues_that_phase(tiny_data, tmp_path,
                                               monkeypatch):
    # what tools/train.py sets (infopro_mm.utils.allow_trusted_checkpoints)
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')

    def options():  # fresh dicts: merging a config pops their _delete_
        # a seed, as tools/train.py gives: the sampler's order follows it
        return {
            **SPLIT, **asy_options(), 'default_hooks.checkpoint.interval': 3,
            'randomness': dict(seed=0)
        }

    full = build_runner(tmp_path / 'full', tiny_data, **options())
    uninterrupted = train(full)
    final = {k: v.clone() for k, v in full.model.state_dict().items()}

    resumed = build_runner(
        tmp_path / 'resumed', tiny_data, resume=True,
        load_from=str(tmp_path / 'full' / 'iter_3.pth'), **options())
    rec = train(resumed)
    assert rec.iters == [3, 4, 5]
    assert rec.active == [1, 2, 2]
    assert rec.states[0] > 0  # phase 2's momentum, resumed
    assert rec.lrs == pytest.approx(uninterrupted.lrs[3:])
    assert rec.changed == [[1], [2], [2]]
    for key, value in resumed.model.state_dict().items():
        assert torch.equal(value, final[key]), key


@pytest.mark.parametrize('options, error, match', [
    (dict(max_iters=0), ValueError, 'max_iters .* positive integer'),
    (dict(param_scheduler=[dict(type='LinearLR', by_epoch=True)]),
     ValueError, 'would never step'),
    ({'optim_wrapper.accumulative_counts': 3}, ValueError,
     'multiple of accumulative_counts=3'),
])
def test_bad_settings_are_refused(tiny_data, tmp_path, options, error,
                                  match):
    merged = dict(SPLIT, **asy_options(max_iters=options.pop('max_iters', 2)))
    merged.update(options)
    runner = build_runner(tmp_path / 'work', tiny_data, **merged)
    with pytest.raises(error, match=match):
        runner.train()


def test_a_plain_model_is_refused(tiny_data, tmp_path):
    from mmengine.config import Config
    from test_runner import TOY
    architecture = Config.fromfile(TOY).model.architecture
    runner = build_runner(
        tmp_path / 'work', tiny_data,
        model=dict(_delete_=True, **architecture),
        optim_wrapper=dict(type='OptimWrapper'),
        custom_hooks=[], **asy_options())
    with pytest.raises(TypeError, match='model is ImageClassifier'):
        runner.train()
