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


# ----------------------------------------------------------------------
# data parallel (InfoProDDP, gloo, 2 processes): a phase on two half
# batches equals the phase on the whole batch in one process.
GN = dict(type='GN', num_groups=1, requires_grad=True)


def build_gn(active):
    """K=3 tiny DeepLabV3 with group norm (no per-rank BN statistics)."""
    from mmengine.registry import DefaultScope
    from tiny_models import tiny_deeplabv3

    from infopro_mm.models import InfoPro
    heads = dict(
        recon=dict(type='infopro_mm.ReconstructionHead', arch='large',
                   width=0.25, norm_cfg=GN),
        task=dict(type='infopro_mm.LocalSegHead', width=0.0625, dropout=0.,
                  norm_cfg=GN))
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        model = InfoPro(
            architecture=tiny_deeplabv3(norm_cfg=GN),
            split=dict(num_modules=3), local_heads=heads,
            loss_weights=dict(recon=(1.5, 0.5), task=1.0))
    model.set_active_module(active)
    return model


def gn_steps(model, train_step, rank=None):
    from tiny_models import seg_batch
    wrapper = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    for seed in range(2):
        batch = seg_batch(num=4, seed=seed)
        if rank is not None:
            batch = {k: v[2 * rank:2 * rank + 2] for k, v in batch.items()}
        train_step(batch, wrapper)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def ddp_worker(rank, port, out):
    import os.path as osp

    import torch.distributed as dist

    from infopro_mm.models import InfoProDDP
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=2)
    results = {}
    for active in range(3):
        model = build_gn(active)
        results[active] = gn_steps(model, InfoProDDP(model).train_step, rank)
    torch.save(results, osp.join(out, f'rank{rank}.pth'))
    dist.destroy_process_group()


def test_infopro_ddp_phases_equal_single_process(tmp_path):
    import torch.multiprocessing as mp
    from conftest import free_port
    mp.spawn(ddp_worker, args=(free_port(), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [torch.load(tmp_path / f'rank{r}.pth', weights_only=False)
             for r in range(2)]
    for active in range(3):
        model = build_gn(active)
        initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        reference = gn_steps(model, model.train_step)
        own = {n for n, p in model.named_parameters()
               if id(p) in {id(q) for q in model.module_parameters()[active]}}
        for name, value in reference.items():
            # only the active module moved, on every rank as in one process
            assert torch.equal(value, initial[name]) == (name not in own)
            for rank in ranks:
                assert_close(rank[active][name], value, rtol=1e-4,
                             atol=1e-5, msg=name)
