"""SavedTensorTracker: exact, deduplicated, released after backward."""
import torch

from infopro_mm.utils import SavedTensorTracker


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
