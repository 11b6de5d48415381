"""SavedTensorTracker: exact, deduplicated, released after backward."""
import pytest
import torch

from infopro_mm.utils import (SavedTensorTracker, format_mib, format_size,
                              optimizer_of, optimizer_states, parse_size)


def test_counts_saved_bytes_once_per_storage_and_releases():
    w = torch.nn.Parameter(torch.randn(100, 100))
    x = torch.randn(8, 100, requires_grad=True)
    with SavedTensorTracker() as tracker:
        y = x @ w  # saves x (parameter w is skipped)
        assert tracker.live_bytes == x.numel() * 4
        z = (y * y).sum()  # saves y twice: one storage
        assert tracker.live_bytes == (x.numel() + y.numel()) * 4
        peak = tracker.peak_bytes
        z.backward()
        assert tracker.live_bytes == 0
    assert tracker.peak_bytes == peak == 2 * 8 * 100 * 4


def test_ignored_module_buffers_are_not_counted():
    bn = torch.nn.BatchNorm1d(4)
    x = torch.randn(3, 4, requires_grad=True)
    with SavedTensorTracker(ignore=bn) as tracker:
        out = bn(x)
    assert tracker.live_bytes >= x.numel() * 4
    del out
    assert tracker.live_bytes == 0


def test_reset_peak():
    x = torch.randn(10, requires_grad=True)
    with SavedTensorTracker() as tracker:
        y = x.exp()
        del y
        tracker.reset_peak()
        assert tracker.peak_bytes == 0


def test_weight_views_are_not_activations():
    linear = torch.nn.Linear(300, 200)
    x = torch.randn(4, 300, requires_grad=True)
    with SavedTensorTracker() as tracker:
        y = linear(x)  # saves x and weight.t() (a view of the parameter)
        assert tracker.live_bytes == x.numel() * 4
        y.sum().backward()
    assert tracker.peak_bytes == x.numel() * 4


@pytest.mark.parametrize('size, expected', [
    (4096, 4096), ('4096', 4096), ('4096B', 4096), ('10GiB', 10 * 2**30),
    ('512MiB', 512 * 2**20), ('10GB', 10**10), ('1.5 kib', 1536),
    ('2TB', 2 * 10**12), ('3mb', 3 * 10**6)
])
def test_parse_size(size, expected):
    assert parse_size(size) == expected


@pytest.mark.parametrize('size', ['10 GiBs', 'ten GiB', '', 'GiB', '1e3MB'])
def test_parse_size_refuses_what_it_cannot_read(size):
    with pytest.raises(ValueError, match='cannot read memory size'):
        parse_size(size)


@pytest.mark.parametrize('size', [0, -5, '0GiB'])
def test_parse_size_refuses_empty_budgets(size):
    with pytest.raises(ValueError, match='must be positive'):
        parse_size(size)


@pytest.mark.parametrize('size', [True, 1.5, None])
def test_parse_size_refuses_other_types(size):
    with pytest.raises(TypeError):
        parse_size(size)


def test_format_size():
    assert format_size(4395913224) == '4.09 GiB'
    assert format_size(3 * 2**20) == '3.00 MiB'
    assert format_size(12) == '12 B'


def test_format_mib():
    assert format_mib(None) == '-'
    assert format_mib(3.24 * 2**20) == '3.2'
    assert format_mib(99.94 * 2**20) == '99.9'
    assert format_mib(1234.4 * 2**20) == '1,234'
    assert format_mib(-150 * 2**20) == '-150'


@pytest.mark.parametrize('optimizer, states', [
    ('sgd', 0), ('SGD', 0), (dict(type='SGD', lr=0.1), 0),
    (dict(type='SGD', lr=0.1, momentum=0.9), 1),
    (dict(type='SGD', momentum=0), 0), ('Adam', 2), ('adamw', 2),
    (dict(type='AdamW', amsgrad=True), 3), (torch.optim.AdamW, 2),
    ('torch.optim.Adagrad', 1), ('RMSprop', 1),
    (dict(type='RMSprop', momentum=0.9, centered=True), 3)
])
def test_optimizer_states_per_type(optimizer, states):
    assert optimizer_states(optimizer) == states


def test_optimizer_states_match_torch():
    # what torch really keeps after a step, per parameter
    for cfg in (dict(type='SGD', momentum=0.9), dict(type='SGD'),
                dict(type='AdamW'), dict(type='Adam', amsgrad=True),
                dict(type='RMSprop', momentum=0.5, centered=True)):
        param = torch.nn.Parameter(torch.randn(7, 3))
        kwargs = {k: v for k, v in cfg.items() if k != 'type'}
        optim = getattr(torch.optim, cfg['type'])([param], lr=0.1, **kwargs)
        param.grad = torch.randn(7, 3)
        optim.step()
        full = [v for v in optim.state[param].values()
                if torch.is_tensor(v) and v.shape == param.shape]
        assert optimizer_states(cfg) == len(full), cfg


def test_optimizer_states_refuses_unknown_types():
    with pytest.raises(ValueError, match='unknown optimizer .*LBFGS'):
        optimizer_states('LBFGS')


def test_optimizer_of_reads_an_optim_wrapper_config():
    optimizer = dict(type='SGD', lr=0.01, momentum=0.9)
    assert optimizer_of(dict(type='OptimWrapper',
                             optimizer=optimizer)) == optimizer
    assert optimizer_of(None) is None
    assert optimizer_of(dict(constructor='X')) is None
