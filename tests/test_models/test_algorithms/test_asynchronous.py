"""InfoPro with one active local module (asynchronous InfoPro's phases)."""
import copy

import pytest
import torch
from test_infopro import GradRecorder, build_cls
from tiny_models import cls_batch
from torch import nn
from torch.testing import assert_close

from infopro_mm.engine import InfoProOptimWrapper


def owned_names(model, k):
    """Parameters and buffers that phase k may change: module k's layers
    and local heads (the last module: everything else)."""
    layers = model.splitter.module_layers()
    last = model.splitter.num_modules - 1
    names = {id(t): n for n, t in list(model.named_parameters()) +
             list(model.named_buffers())}

    def tensors(modules):
        return {
            names[id(t)]
            for m in modules
            for t in list(m.parameters()) + list(m.buffers())
        }

    if k < last:
        return tensors([m for layer in layers[k] for m in layer.modules] +
                       [model.local_heads[k]])
    others = tensors([m for mod in layers[:last] for layer in mod
                      for m in layer.modules] + [model.local_heads])
    return set(names.values()) - others


def train(model, steps=2):
    """Steps of SGD with momentum and weight decay on every parameter."""
    wrapper = InfoProOptimWrapper(
        torch.optim.SGD(
            model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2))
    before = copy.deepcopy(model.state_dict())
    for seed in range(steps):
        model.train_step(cls_batch(seed=seed), wrapper)
    after = model.state_dict()
    return {n for n in before if not torch.equal(before[n], after[n])}


@pytest.mark.parametrize('k', [0, 1, 2])
def test_phase_changes_only_its_module(mmpretrain_scope, k):
    model = build_cls()
    model.set_active_module(k)
    model.train()
    changed = train(model)
    owned = owned_names(model, k)
    assert changed - owned == set()
    params = {n for n, _ in model.named_parameters()} & owned
    assert params == {
        n for n, p in model.named_parameters()
        if id(p) in {id(q) for q in model.module_parameters()[k]}
    }
    assert params <= changed  # every parameter of module k learns


def test_freezing_check_fails_without_an_active_module(mmpretrain_scope):
    """Negative control: simultaneous training changes other modules, so
    the check above would catch a phase that leaks into them."""
    model = build_cls()
    model.train()
    changed = train(model)
    assert changed - owned_names(model, 1)


def test_frozen_batch_norm_statistics_need_eval_mode(mmpretrain_scope):
    """Earlier modules' BN statistics stay put in a phase; with them in
    training mode (``nn.Module.train`` bypasses InfoPro's) they move even
    under no_grad, so it is the eval mode that freezes them."""
    model = build_cls()
    model.set_active_module(1)
    model.train()
    assert not model.architecture.backbone.norm1.training
    assert model.architecture.backbone.layer2[0].bn1.training
    key = 'architecture.backbone.bn1.running_mean'
    assert key not in train(model)

    model = build_cls()
    model.set_active_module(1)
    nn.Module.train(model, True)
    assert key in train(model, steps=1)


def test_frozen_modules_run_without_grad_and_later_ones_not_at_all(
        mmpretrain_scope):
    model = build_cls()
    model.set_active_module(1)
    model.train()
    calls, heads = {}, set()

    def record(idx):
        def hook(*_):  # returns None: the output stays
            calls.setdefault(idx, torch.is_grad_enabled())
        return hook

    for idx, layer in enumerate(model.splitter.basic_layers):
        layer.modules[-1].register_forward_hook(record(idx))
    model.architecture.head.register_forward_pre_hook(record('head'))
    for j, module_heads in enumerate(model.local_heads):
        for head in module_heads.values():
            head.loss = lambda *args, j=j, loss=head.loss: (
                heads.add(j), loss(*args))[1]
    model.train_step(cls_batch(), GradRecorder(model))
    # module 0: stem, layer1.0, layer1.1; module 1: layer2.0..layer3.0
    assert calls == {0: False, 1: False, 2: False, 3: True, 4: True, 5: True}
    assert heads == {1}
    assert torch.is_grad_enabled()


def test_phase_gradients_equal_simultaneous_ones(mmpretrain_scope):
    """Module 1's gradient in its phase is the one simultaneous training
    gives it (gradient isolation), with module 0 in eval mode in both."""
    data = cls_batch()
    model = build_cls()
    model.set_active_module(1)
    model.train()
    alone = GradRecorder(model)
    model.train_step(copy.deepcopy(data), alone)

    reference = build_cls()
    reference.train()
    for layer in reference.splitter.module_layers()[0]:
        for module in layer.modules:
            module.eval()
    together = GradRecorder(reference)
    reference.train_step(copy.deepcopy(data), together)
    own = {
        n for n, p in model.named_parameters()
        if id(p) in {id(q) for q in model.module_parameters()[1]}
    }
    assert set(alone.grads) == own
    for name in own:
        assert_close(alone.grads[name], together.grads[name], msg=name)


def test_loss_mode_returns_the_active_modules_losses(mmpretrain_scope):
    model = build_cls()
    data = model.data_preprocessor(cls_batch(), True)
    model.set_active_module(0)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == {'local1.loss_recon', 'local1.loss_task'}
    model.set_active_module(2)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert set(losses) == set(
        model.architecture.loss(data['inputs'], data['data_samples']))
    model.set_active_module(None)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    assert {'local1.loss_task', 'local2.loss_task'} < set(losses)


def test_only_the_active_modules_heads_follow_the_optimizer(
        mmpretrain_scope):
    model = build_cls()
    calls = []
    for j, heads in enumerate(model.local_heads):
        heads['task'].after_optimizer_step = lambda j=j: calls.append(j)
    model.set_active_module(1)
    model.train_step(cls_batch(), GradRecorder(model))
    assert calls == [1]
    model.set_active_module(2)
    model.train_step(cls_batch(), GradRecorder(model))
    assert calls == [1]


def test_bad_active_module_is_an_error(mmpretrain_scope):
    model = build_cls()
    with pytest.raises(ValueError, match=r'K=3 local modules \(0..2\)'):
        model.set_active_module(3)
    model.weight_factors.update(recon=0., task=0.)
    model.set_active_module(0)
    with pytest.raises(ValueError, match='local module 1 has nothing'):
        model.train_step(cls_batch(), GradRecorder(model))
    model.set_active_module(None)
    model.train()
    assert all(m.training for m in model.modules())
