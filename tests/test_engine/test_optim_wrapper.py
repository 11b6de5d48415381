"""local_backward: scaled like the task loss, counters untouched."""
import pytest
import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from infopro_mm.engine import InfoProAmpOptimWrapper, InfoProOptimWrapper
from infopro_mm.registry import OPTIM_WRAPPERS


def linear():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 1)


def test_local_backward_scales_like_update_params_without_counting():
    model = linear()
    wrapper = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1), accumulative_counts=4)
    x = torch.randn(3, 4)
    wrapper.local_backward(model(x).sum())
    assert wrapper.inner_count == 0
    expected = torch.autograd.grad(model(x).sum() / 4, model.weight)[0]
    torch.testing.assert_close(model.weight.grad, expected)
    wrapper.update_params(model(x).sum())
    assert wrapper.inner_count == 1
    torch.testing.assert_close(model.weight.grad, 2 * expected)


def test_registered_and_subclass_mmengine_wrappers():
    assert OPTIM_WRAPPERS.get('InfoProOptimWrapper') is InfoProOptimWrapper
    assert issubclass(InfoProOptimWrapper, OptimWrapper)
    assert issubclass(InfoProAmpOptimWrapper, AmpOptimWrapper)


def amp_wrapper(model, monkeypatch, device='cpu'):
    """An InfoProAmpOptimWrapper; on CPU mmengine refuses AMP, so the test
    lifts its device check and gives it a CPU GradScaler."""
    if device == 'cpu':
        import mmengine.optim.optimizer.amp_optimizer_wrapper as amp
        monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    wrapper = InfoProAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_scale=dict(init_scale=1024.))
    if device == 'cpu':
        wrapper.loss_scaler = torch.amp.GradScaler(
            'cpu', init_scale=1024.)
    return wrapper


def check_amp(device, monkeypatch):
    model, reference = linear().to(device), linear().to(device)
    wrapper = amp_wrapper(model, monkeypatch, device)
    x = torch.randn(3, 4, device=device)
    wrapper.local_backward(model(x).sum())
    assert wrapper.inner_count == 0
    grad = torch.autograd.grad(reference(x).sum(), reference.weight)[0]
    torch.testing.assert_close(model.weight.grad, 1024. * grad)
    wrapper.update_params(model(x).pow(2).mean())
    assert wrapper.inner_count == 1
    ref_optim = torch.optim.SGD(reference.parameters(), lr=0.1)
    (reference(x).sum() + reference(x).pow(2).mean()).backward()
    ref_optim.step()
    torch.testing.assert_close(model.weight, reference.weight)


def test_amp_local_backward_on_cpu_scaler(monkeypatch):
    check_amp('cpu', monkeypatch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_amp_local_backward_on_cuda(monkeypatch):
    check_amp('cuda', monkeypatch)
