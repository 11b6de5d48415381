"""split=dict(policy='time'): cuts that balance measured forward + backward
time, for module-parallel pipelines."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.model import ModuleDict
from mmengine.registry import DefaultScope
from tiny_models import CLS_HEADS, tiny_resnet_classifier

from infopro_mm.models import InfoPro, TimeProfile, plan_balanced_cuts

NAMES = ['stem'] + [f'layer{s}.{b}' for s in range(1, 5) for b in range(2)]
WEIGHTS = dict(recon=1.0, task=1.0)


def build(num_modules=2, **split):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        return InfoPro(
            architecture=tiny_resnet_classifier(),
            split=dict(dict(num_modules=num_modules, policy='time',
                            input_size=(32, 32), batch_size=4), **split),
            local_heads=CLS_HEADS,
            loss_weights=WEIGHTS)


def fixed_table(layer_ms):
    """A time profile from a table (ms): heads 1 ms, tail 2 ms."""
    n = len(NAMES)
    return TimeProfile(
        names=NAMES,
        layer_seconds=[t / 1e3 for t in layer_ms],
        input_seconds=[0.] + [-0.5e-3] * (n - 1),
        head_seconds=[1e-3] * n,
        tail_seconds=2e-3,
        input_size=(32, 32),
        batch_size=4,
        device='cpu',
        warmup=2,
        repeats=5)


class Messages(logging.Handler):
    """Collects the messages logged while attached."""

    def __init__(self) -> None:
        super().__init__()
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


# stage ms = its layers, -0.5 if it starts after a cut, + 1 (heads) or
# + 2 (tail)
@pytest.mark.parametrize('layer_ms,k,boundaries', [
    # slow early layers pull the cut forward: 20+2+2+1 = 25 / 23.5
    # (after layer1.0: 23 / 25.5)
    ([20, 2, 2, 2, 2, 2, 2, 2, 12], 2, ['layer1.1']),
    # a slow last block pushes it back: 13 / 14.5 (after layer3.1: 15)
    ([2, 2, 2, 2, 2, 2, 2, 2, 9], 2, ['layer3.0']),
    # the slow last block alone: 7 / 10.5 / 10.5, tied in total with
    # 9 / 8.5 / 10.5 (after layer2.0); the earlier cuts win
    ([2, 2, 2, 2, 2, 2, 2, 2, 9], 3, ['layer1.1', 'layer4.0']),
])
def test_cuts_follow_the_time_table(monkeypatch, layer_ms, k, boundaries):
    table = fixed_table(layer_ms)
    calls = []

    def profile_time(self, input_size, batch_size, *args, **kwargs):
        calls.append((tuple(input_size), batch_size))
        return table

    monkeypatch.setattr(InfoPro, 'profile_time', profile_time)
    model = build(k)
    assert calls == [((32, 32), 4)]  # the training input and batch
    assert model.splitter.boundaries == boundaries
    cuts, _ = plan_balanced_cuts(table['layer_seconds'],
                                 table['input_seconds'],
                                 table['head_seconds'],
                                 table['tail_seconds'], k)
    assert model.splitter.cuts == cuts
    assert model.time_profile is table and model.memory_profile is None
    assert len(model.local_heads) == k - 1


def test_the_uniform_split_would_be_slower(monkeypatch):
    table = fixed_table([20, 2, 2, 2, 2, 2, 2, 2, 12])
    monkeypatch.setattr(InfoPro, 'profile_time', lambda *a, **k: table)
    model = build(2)
    from infopro_mm.models import uniform_cuts
    balanced = max(table.module_seconds(model.splitter.cuts))
    uniform = max(table.module_seconds(uniform_cuts(len(NAMES), 2)))
    assert balanced == pytest.approx(25e-3) and uniform > balanced
    assert table.images_per_second(model.splitter.cuts) == \
        pytest.approx(4 / 25e-3)


def test_real_profile_is_positive_leaves_no_trace_and_is_logged():
    logger = MMLogger.get_current_instance()
    handler = Messages()
    logger.addHandler(handler)
    try:
        model = build(3)
    finally:
        logger.removeHandler(handler)
    profile = model.time_profile
    assert profile['input_size'] == (32, 32) and profile['batch_size'] == 4
    assert profile['device'] == 'cpu'
    assert all(t > 0 for t in profile['layer_seconds'])
    assert all(t > 0 for t in profile['head_seconds'][:-1])
    assert profile['tail_seconds'] > 0
    stages = profile.module_seconds(model.splitter.cuts)
    assert len(stages) == 3 and all(t > 0 for t in stages)
    line = next(m for m in handler.messages if 'time-balanced split' in m)
    assert f'cuts after {model.splitter.boundaries}' in line
    ms = ', '.join(f'{1e3 * t:.1f}' for t in stages)
    assert f'per stage (ms): [{ms}]' in line
    assert f'slowest stage {1e3 * max(stages):.1f} ms' in line
    assert 'images/s' in line
    # BN statistics, gradients, mode and the global RNG are as before
    # timing: the same seed without planning builds the same model (local
    # heads included)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        reference = InfoPro(
            architecture=tiny_resnet_classifier(),
            split=dict(boundaries=model.splitter.boundaries),
            local_heads=CLS_HEADS,
            loss_weights=WEIGHTS)
    reference_state = reference.state_dict()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, reference_state[name], msg=name)
    assert all(p.grad is None for p in model.parameters())
    assert model.training


def test_profile_time_skips_heads_that_never_run(monkeypatch):
    model = build(1, policy='uniform')
    monkeypatch.setitem(model.loss_weights, 'recon', (0, 0))
    seen = []
    original = ModuleDict.__getitem__

    def record(self, name):
        seen.append(name)
        return original(self, name)

    monkeypatch.setattr(ModuleDict, '__getitem__', record)
    profile = model.profile_time((32, 32), 2, warmup=0, repeats=1)
    assert set(seen) == {'task'}
    assert profile['repeats'] == 1 and profile['warmup'] == 0


def test_boundaries_win_over_the_time_policy():
    model = build(
        None, boundaries=['layer2.0'], input_size=None, batch_size=None)
    assert model.splitter.boundaries == ['layer2.0']
    assert model.splitter.policy is None and model.time_profile is None


def test_max_memory_is_refused_with_the_time_policy():
    with pytest.raises(ValueError, match="`max_memory` needs "
                       "policy='balanced'"):
        build(None, max_memory='1GiB')


@pytest.mark.parametrize('rank', [0, 1])
def test_every_rank_takes_rank_0s_time_profile(monkeypatch, rank):
    # a distributed launch (gloo or NCCL) as seen from one rank: rank 0
    # times and broadcasts, the others receive; all take the same cuts
    from infopro_mm.models.algorithms import infopro
    table = fixed_table([2, 2, 2, 2, 2, 2, 2, 2, 9])
    sent = []

    def broadcast(holder, src):
        assert src == 0
        if rank == 0:
            sent.append(holder[0])
        else:
            assert holder == [None]
            holder[0] = table

    def profile_time(*args, **kwargs):
        assert rank == 0, f'rank {rank} timed its layers'
        return table

    monkeypatch.setattr(infopro, 'is_distributed', lambda: True)
    monkeypatch.setattr(infopro, 'get_rank', lambda: rank)
    monkeypatch.setattr(infopro, 'broadcast_object_list', broadcast)
    monkeypatch.setattr(InfoPro, 'profile_time', profile_time)
    model = build(3)
    assert sent == ([table] if rank == 0 else [])
    assert model.time_profile is table
    assert model.splitter.boundaries == ['layer1.1', 'layer4.0']
