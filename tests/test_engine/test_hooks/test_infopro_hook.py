"""InfoProHook: local losses into the message hub, weight schedules."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.logging import MessageHub
from tiny_models import SEG_HEADS, seg_batch, tiny_deeplabv3

from infopro_mm.engine import InfoProHook, InfoProOptimWrapper
from infopro_mm.engine.hooks import piecewise_linear
from infopro_mm.models import InfoPro


def test_piecewise_linear():
    points = [(0, 1.0), (10, 0.0), (20, 0.5)]
    assert piecewise_linear(-5, points) == 1.0
    assert piecewise_linear(5, points) == 0.5
    assert piecewise_linear(15, points) == 0.25
    assert piecewise_linear(99, points) == 0.5


@pytest.fixture
def runner(mmseg_scope):
    model = InfoPro(
        architecture=tiny_deeplabv3(),
        split=dict(boundaries=['layer2.0']),
        local_heads=SEG_HEADS,
        loss_weights=dict(recon=(2.0, 2.0), task=1.0))
    return SimpleNamespace(
        model=model,
        iter=0,
        message_hub=MessageHub.get_instance('test_infopro_hook'))


def test_hook_logs_local_losses_apart_from_the_total(runner):
    hook = InfoProHook()
    hook.before_train(runner)
    optim = InfoProOptimWrapper(
        torch.optim.SGD(runner.model.parameters(), lr=0.))
    outputs = runner.model.train_step(seg_batch(), optim)
    hook.after_train_iter(runner, 0, outputs=outputs)
    scalars = runner.message_hub.log_scalars
    recon = scalars['train/local1.loss_recon'].current()
    task = scalars['train/local1.loss_task'].current()
    assert recon > 0 and task > 0
    assert not any(k.startswith('local') for k in outputs)
    task_terms = sum(v for k, v in outputs.items()
                     if 'loss' in k and k != 'loss')
    torch.testing.assert_close(outputs['loss'], task_terms)


def test_hook_schedules_loss_weights(runner):
    hook = InfoProHook(weight_schedule=dict(recon=[(0, 1.0), (10, 0.0)]))
    hook.before_train(runner)
    runner.iter = 5
    hook.before_train_iter(runner, 5)
    assert runner.model.module_weights(0)['recon'] == pytest.approx(1.0)
    runner.iter = 10
    hook.before_train_iter(runner, 10)
    assert runner.model.module_weights(0)['recon'] == 0.0


def test_hook_rejects_unknown_schedule_names(runner):
    with pytest.raises(ValueError, match='match no local head'):
        InfoProHook(weight_schedule=dict(decoder=[(0, 1.)])).before_train(
            runner)


def test_hook_needs_an_infopro_model():
    runner = SimpleNamespace(model=torch.nn.Linear(1, 1))
    with pytest.raises(TypeError, match='infopro_mm.InfoPro model'):
        InfoProHook().before_train(runner)
