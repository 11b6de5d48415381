"""split=dict(max_memory=...): the smallest K whose peak fits the budget."""
import logging

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from tiny_models import (CLS_HEADS, SEG_HEADS, tiny_deeplabv3,
                         tiny_resnet_classifier)

from infopro_mm.engine import InfoProRunner
from infopro_mm.models import InfoPro, MemoryBudgetError, plan_balanced_cuts
from infopro_mm.utils import optimizer_states

WEIGHTS = dict(recon=1.0, task=1.0)
SIZE, BATCH = (64, 64), 4


def build(family='seg', **split):
    split.setdefault('input_size', SIZE)
    split.setdefault('batch_size', BATCH)
    scope, architecture, heads = dict(
        seg=('mmseg', tiny_deeplabv3, SEG_HEADS),
        cls=('mmpretrain', tiny_resnet_classifier, CLS_HEADS))[family]
    with DefaultScope.overwrite_default_scope(scope):
        torch.manual_seed(0)
        return InfoPro(
            architecture=architecture(),
            split=split,
            local_heads=heads,
            loss_weights=WEIGHTS)


def peaks_by_k(profile, optimizer='AdamW'):
    """Cuts and estimated peak of every K, from one profile."""
    states = optimizer_states(optimizer)
    by_k = {}
    for k in range(1, len(profile['names']) + 1):
        cuts, _ = plan_balanced_cuts(profile['layer_bytes'],
                                     profile['input_bytes'],
                                     profile['head_bytes'],
                                     profile['tail_bytes'], k)
        by_k[k] = (cuts, profile.peak_bytes(cuts, states))
    return by_k


@pytest.fixture(scope='module')
def peaks():
    """Profile of the tiny DeepLabV3 and the peak of every K (AdamW)."""
    profile = build(num_modules=1).profile_memory(SIZE, BATCH)
    return profile, peaks_by_k(profile)


def test_budget_met_picks_the_smallest_k_that_fits(peaks, caplog):
    _, by_k = peaks
    # the smallest budget that K=2 meets and K=1 does not
    assert by_k[2][1] < by_k[1][1]
    model = build(max_memory=by_k[2][1], optimizer='AdamW')
    assert model.splitter.num_modules == 2
    assert model.splitter.cuts == by_k[2][0]
    assert len(model.local_heads) == 1
    model = build(max_memory=by_k[1][1], optimizer='AdamW')
    assert model.splitter.num_modules == 1
    # one byte less than K=2's peak: the next K that fits
    smaller = by_k[2][1] - 1
    expected = min(k for k, (_, peak) in by_k.items() if peak <= smaller)
    model = build(max_memory=smaller, optimizer='AdamW')
    assert model.splitter.num_modules == expected


class Messages(logging.Handler):
    """Collects the messages logged while attached."""

    def __init__(self) -> None:
        super().__init__()
        self.messages = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_budget_works_for_a_classifier():
    profile = build('cls', num_modules=1).profile_memory(SIZE, BATCH)
    by_k = peaks_by_k(profile)
    budget = min(peak for _, peak in by_k.values())
    expected = min(k for k, (_, peak) in by_k.items() if peak <= budget)
    assert expected > 1
    model = build('cls', max_memory=budget, optimizer='AdamW')
    assert model.splitter.num_modules == expected
    assert model.splitter.cuts == by_k[expected][0]
    with pytest.raises(MemoryBudgetError, match='smallest achievable'):
        build('cls', max_memory=budget - 1, optimizer='AdamW')


def test_budget_logs_a_per_module_table(peaks):
    _, by_k = peaks
    logger = MMLogger.get_current_instance()
    handler = Messages()
    logger.addHandler(handler)
    try:
        build(max_memory=by_k[2][1], optimizer=dict(type='AdamW'))
    finally:
        logger.removeHandler(handler)
    table = next(m for m in handler.messages if 'max_memory=' in m)
    assert 'K=2 is the smallest K that fits' in table
    assert '| 1 | stem..' in table and '| 2 | ' in table
    assert '2 state tensor(s) per parameter' in table


def test_budget_too_small_names_the_smallest_achievable_peak(peaks):
    _, by_k = peaks
    best = min(peak for _, peak in by_k.values())
    with pytest.raises(MemoryBudgetError,
                       match=f'smallest achievable peak is .*{best} bytes'):
        build(max_memory=best - 1, optimizer='AdamW')


def test_optimizer_state_counts_against_the_budget(peaks):
    profile, by_k = peaks
    params = profile['param_bytes']
    assert profile.fixed_bytes((), 2) - profile.fixed_bytes((), 0) == \
        2 * params
    # AdamW's K=1 peak holds plain SGD's K=1 with room for 2 buffers
    sgd = build(max_memory=by_k[1][1] - params, optimizer='SGD')
    assert sgd.splitter.num_modules == 1
    momentum = build(
        max_memory=by_k[1][1] - params,
        optimizer=dict(type='SGD', momentum=0.9))
    assert momentum.splitter.num_modules == 1
    with pytest.raises(MemoryBudgetError):
        build(max_memory=by_k[1][1] - params, optimizer='AdamW')


def test_sizes_as_strings():
    model = build(max_memory='1GiB', optimizer='SGD')
    assert model.max_memory == 2**30 and model.splitter.num_modules == 1
    assert build(max_memory='1GB', optimizer='SGD').max_memory == 10**9


@pytest.mark.parametrize('extra, message', [
    (dict(boundaries=['layer2.0']), 'both `max_memory` and `boundaries`'),
    (dict(num_modules=2), 'both `max_memory` and `num_modules`'),
    (dict(policy='uniform'), "needs policy='balanced'"),
])
def test_budget_refuses_what_fixes_the_split(extra, message):
    with pytest.raises(ValueError, match=message):
        build(max_memory='1GiB', optimizer='SGD', **extra)


def test_budget_needs_batch_size_and_optimizer():
    with pytest.raises(ValueError, match='needs `batch_size`'):
        build(max_memory='1GiB', optimizer='SGD', batch_size=None)
    with pytest.raises(ValueError, match='give split.optimizer'):
        build(max_memory='1GiB')
    with pytest.raises(ValueError, match='only used with split.max_memory'):
        build(num_modules=2, policy='balanced', optimizer='SGD')


def test_runner_tells_the_split_its_optimizer(tmp_path):
    runner = InfoProRunner(
        model=dict(
            type='infopro_mm.InfoPro',
            architecture=tiny_deeplabv3(),
            split=dict(max_memory='1GiB', input_size=SIZE, batch_size=BATCH),
            local_heads=SEG_HEADS,
            loss_weights=WEIGHTS),
        work_dir=str(tmp_path),
        # not built before train(); the runner wants all three
        train_dataloader=dict(dataset=dict()),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(
            type='infopro_mm.InfoProOptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-3)),
        default_scope='mmseg')
    assert runner.model.budget_optimizer == dict(type='AdamW', lr=1e-3)
    assert runner.model.splitter.num_modules == 1
