"""InfoPro's successors as local heads: MAN and AugLocal."""
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from tiny_models import (cls_batch, seg_batch, tiny_deeplabv3,
                         tiny_resnet_classifier)

from infopro_mm.models import (AugLocalHead, AugLocalSegHead, InfoPro,
                               LocalBatch, MomentumAuxHead, frozen_copy, pyramid_depth,
                               sample_layers)
from infopro_mm.registry import MODELS

CLS = dict(type='infopro_mm.LocalClsHead', arch='small')
RECON = dict(type='infopro_mm.ReconstructionHead', arch='small')


def man(head, **kwargs):
    return dict(type='infopro_mm.MomentumAuxHead', head=head, **kwargs)


@pytest.fixture(autouse=True)
def _mmpretrain_scope():
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        yield


def build(heads, weights, boundaries=('layer1.1', 'layer3.0')):
    """ResNet_CIFAR-18 (stem + 8 blocks) cut into K=3 modules."""
    torch.manual_seed(0)
    model = InfoPro(
        architecture=tiny_resnet_classifier(),
        split=dict(boundaries=list(boundaries)),
        local_heads=heads,
        loss_weights=weights)
    model.init_weights()
    return model


def optim_wrapper(model, lr=0.1, **kwargs):
    return build_optim_wrapper(
        model,
        dict(
            type='infopro_mm.InfoProOptimWrapper',
            optimizer=dict(type='SGD', lr=lr, momentum=0.9),
            **kwargs))


def optimizer_tensors(wrapper):
    return {
        p.data_ptr()
        for g in wrapper.optimizer.param_groups for p in g['params']
    }


def test_man_is_registered_and_copies_the_next_layer():
    assert MODELS.get('MomentumAuxHead') is MomentumAuxHead
    model = build(dict(task=man(CLS)), dict(task=1.0))
    bb = model.architecture.backbone
    first, second = (h['task'] for h in model.local_heads)
    # module 1 ends after layer1.1: MAN copies layer2.0; module 2 after
    # layer3.0: it copies layer3.1
    assert (first.layer_name, second.layer_name) == ('layer2.0', 'layer3.1')
    assert first.live_layer[0] is bb.layer2[0]
    # the wrapped head is built for the next layer's output
    assert second.head.in_channels == bb.layer3[1].conv2.out_channels
    assert first.momentum == 0.995
    # both copies start at the initialised live layer, and are copies
    for copy_ in (first.ema, first.bias_layer):
        for key, value in bb.layer2[0].state_dict().items():
            torch.testing.assert_close(copy_.state_dict()['0.' + key], value)
    assert first.bias_layer[0].conv1.weight is not bb.layer2[0].conv1.weight
    # the live layer is not a submodule of the head
    assert not any(m is bb.layer2[0] for m in first.modules())


def test_frozen_copy_has_no_parameters_but_passes_gradient():
    conv = torch.nn.Conv2d(2, 3, 3, padding=1)
    frozen = frozen_copy(conv)
    assert list(frozen.parameters()) == []
    torch.testing.assert_close(frozen.weight, conv.weight.detach())
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    frozen(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not frozen.weight.requires_grad and frozen.weight.grad is None


def test_ema_update_rule_is_exact():
    model = build(dict(task=man(CLS, momentum=0.9)), dict(task=1.0))
    head = model.local_heads[0]['task']
    live = head.live_layer[0].conv1.weight
    ema = head.ema[0].conv1.weight
    with torch.no_grad():
        live.fill_(3.)
        ema.fill_(1.)
    head.after_optimizer_step()
    # 0.9 * 1 + 0.1 * 3
    torch.testing.assert_close(ema, torch.full_like(ema, 1.2))
    head.after_optimizer_step()
    # 0.9 * 1.2 + 0.1 * 3
    torch.testing.assert_close(ema, torch.full_like(ema, 1.38))
    # BN running statistics are the copy's own, not averaged
    before = head.ema[0].bn1.running_mean.clone()
    with torch.no_grad():
        head.live_layer[0].bn1.running_mean.fill_(5.)
    head.after_optimizer_step()
    torch.testing.assert_close(head.ema[0].bn1.running_mean, before)


def test_ema_follows_every_optimizer_step_and_is_not_in_the_optimizer():
    model = build(dict(task=man(CLS)), dict(task=1.0))
    head = model.local_heads[0]['task']
    wrapper = optim_wrapper(model, accumulative_counts=2)
    held = optimizer_tensors(wrapper)
    assert not held & {b.data_ptr() for b in head.ema.buffers()}
    assert {p.data_ptr() for p in head.bias_layer.parameters()} <= held
    # (conv weights of a zero-initialised residual branch get no gradient
    # on the first steps; the last BN's weight does)
    live = head.live_layer[0].bn2.weight
    ema = head.ema[0].bn2.weight
    steps = []
    wrapper.optimizer.register_step_post_hook(
        lambda *_: steps.append(len(steps)))
    for it in range(4):
        old_ema = ema.clone()
        old_steps = len(steps)
        model.train_step(cls_batch(seed=it), wrapper)
        assert ema.grad is None and not ema.requires_grad
        if len(steps) == old_steps:  # accumulating: no step, no update
            torch.testing.assert_close(ema, old_ema)
        else:  # one step: one update from the weights just written
            assert len(steps) == old_steps + 1
            assert not torch.equal(ema, old_ema)
            torch.testing.assert_close(
                ema, 0.995 * old_ema + 0.005 * live.detach())
    assert len(steps) == 2


def test_ema_skips_the_steps_amp_skips(monkeypatch):
    """An AMP step skipped for inf gradients moves neither the weights nor
    the EMA (CPU GradScaler; mmengine's device check lifted)."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as amp

    from infopro_mm.engine import InfoProAmpOptimWrapper
    monkeypatch.setattr(amp, 'is_cuda_available', lambda: True)
    model = build(dict(task=man(CLS)), dict(task=1.0))
    wrapper = InfoProAmpOptimWrapper(
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        loss_scale=dict(init_scale=1024.))
    wrapper.loss_scaler = torch.amp.GradScaler('cpu', init_scale=1024.)
    steps = []
    wrapper.optimizer.register_step_post_hook(lambda *_: steps.append(1))
    head = model.local_heads[0]['task']
    ema = head.ema[0].bn2.weight
    old = ema.clone()
    model.train_step(cls_batch(), wrapper)
    assert len(steps) == 1 and not torch.equal(ema, old)
    # inf gradients in module 1's head: the scaler skips the step
    head.head.fc.weight.register_hook(lambda g: g * float('inf'))
    old = ema.clone()
    model.train_step(cls_batch(seed=1), wrapper)
    assert wrapper.loss_scaler.get_scale() == 512.
    assert len(steps) == 1 and torch.equal(ema, old)


def grads_of(loss, model):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(
        loss, [p for _, p in named], retain_graph=True, allow_unused=True)
    return {
        n
        for (n, _), g in zip(named, grads)
        if g is not None and g.abs().sum() > 0
    }


@pytest.mark.parametrize('heads,weights', [
    (dict(task=man(CLS)), dict(task=1.0)),
    (dict(recon=man(RECON), task=man(CLS)), dict(recon=5.0, task=1.0)),
])
def test_man_keeps_gradient_isolation(heads, weights):
    model = build(heads, weights)
    data = model.data_preprocessor(cls_batch(), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    local1 = sum(v for k, v in losses.items() if k.startswith('local1.'))
    names = grads_of(local1, model)
    ids = {id(p) for p in model.module_parameters()[0]}
    module1 = {n for n, p in model.named_parameters() if id(p) in ids}
    assert names and names <= module1
    # module 1's own layers learn from its loss (through both copies)
    assert 'architecture.backbone.layer1.1.bn2.weight' in names
    assert 'architecture.backbone.conv1.weight' in names
    # the real next layer gets nothing from module 1's head
    assert not any('layer2.0' in n for n in names)
    # every EMA tensor is a buffer: nothing of it is trainable
    assert not any('.ema.' in n for n, _ in model.named_parameters())
    # through the EMA path alone, gradient still reaches module 1's output
    head = model.local_heads[0]['task']
    feat = torch.randn(2, 16, 8, 8, requires_grad=True)
    head.ema(feat).sum().backward()
    assert feat.grad.abs().sum() > 0


def test_man_trains_and_checkpoints_stay_plain(tmp_path):
    model = build(dict(recon=man(RECON), task=man(CLS)),
                  dict(recon=(5.0, 1.0), task=(0.5, 1.0)))
    wrapper = optim_wrapper(model)
    log = model.train_step(cls_batch(), wrapper)
    assert torch.isfinite(log['loss'])
    assert set(model.local_log_vars) == {
        'local1.loss_recon', 'local1.loss_task', 'local2.loss_recon',
        'local2.loss_task'
    }
    # the head's state (EMA included) is the InfoPro model's, training-only
    state = model.state_dict()
    assert 'local_heads.0.task.ema.0.conv1.weight' in state
    torch.save(model.plain_state_dict(), tmp_path / 'plain.pth')
    plain = MODELS.build(tiny_resnet_classifier())
    plain.load_state_dict(torch.load(tmp_path / 'plain.pth'), strict=True)
    # resuming restores the EMA exactly
    other = build(dict(recon=man(RECON), task=man(CLS)),
                  dict(recon=(5.0, 1.0), task=(0.5, 1.0)))
    other.load_state_dict(state, strict=True)
    ema = model.local_heads[0]['task'].ema[0].conv1.weight
    torch.testing.assert_close(
        other.local_heads[0]['task'].ema[0].conv1.weight, ema)


def test_man_without_a_next_layer_or_head_fails_loudly():
    with pytest.raises(ValueError, match='needs `head`'):
        MomentumAuxHead(16, 1, later_layers=(), later_shapes=())
    with pytest.raises(ValueError, match='basic layer after its module'):
        MomentumAuxHead(16, 1, head=CLS, later_layers=(), later_shapes=())


# ---------------------------------------------------------------- AugLocal
def aug(depth=2, **kwargs):
    return dict(type='infopro_mm.AugLocalHead', depth=depth, **kwargs)


@pytest.mark.parametrize('depth,module,k,expected', [
    (2, 0, 14, 2), (2, 12, 14, 2),  # the authors' ResNet-32 (d=2, K=16-2)
    (3, 0, 52, 3), (3, 50, 52, 2),  # ResNet-110 (d=3, K=55-3)
    (5, 0, 11, 5), (5, 3, 11, 4), (5, 9, 11, 3),
    (4, 0, 2, 4),  # K=2: the first module's depth
    (1, 5, 8, 1),
])
def test_pyramid_depth_is_the_authors_rule(depth, module, k, expected):
    # max(1, round(d (1 - r) + r)), r = 0.5 i / (K - 2): e.g. d=5, i=3,
    # K=11: r = 1/6, 5 * 5/6 + 1/6 = 4.33 -> 4; d=5, i=9: 2.5 + 0.5 -> 3
    assert pyramid_depth(depth, module, k) == expected


@pytest.mark.parametrize('layer,num,depth,expected', [
    (0, 16, 2, [8, 15]),  # 15 / 2 = 7.5 rounds half to even: 8
    (3, 16, 2, [9, 15]),
    (0, 16, 4, [4, 8, 11, 15]),  # 3.75, 7.5, 11.25, 15
    (13, 16, 3, [14, 15]),  # fewer later layers than the depth: all
    (2, 9, 2, [5, 8]),
])
def test_sample_layers_is_uniform_over_the_later_layers(
        layer, num, depth, expected):
    assert sample_layers(layer, num, depth) == expected


def test_auglocal_builds_its_net_from_the_later_layers():
    assert MODELS.get('AugLocalHead') is AugLocalHead
    model = build(dict(task=aug(2)), dict(task=1.0),
                  boundaries=('layer1.1', 'layer4.0'))
    first, last = (h['task'] for h in model.local_heads)
    bb = model.architecture.backbone
    # module 1 ends at basic layer 2 of 9: layers 5 and 8 (K=3: depth 2,
    # then round(2 * 0.5 + 0.5) = 2 at the 2nd local module)
    assert first.sampled_names == ['layer3.0', 'layer4.1']
    assert first.copied_names == []  # widths 64, 128 from 16: new blocks
    block1, block2 = first.blocks
    assert block1.branch[0][0].in_channels == 16
    assert block1.branch[0][0].out_channels == 64
    assert block1.branch[0][0].stride == (2, 2)  # stride 1 -> 4: 2, owes 2
    assert block2.branch[0][0].stride == (2, 2)
    assert first.fc.out_features == 5 and first.fc.in_features == 128
    # the last local module has one later layer: its copy
    assert last.sampled_names == last.copied_names == ['layer4.1']
    copy_ = last.blocks[0]
    assert not any(m is bb.layer4[1] for m in last.modules())
    for key, value in bb.layer4[1].state_dict().items():
        torch.testing.assert_close(copy_.state_dict()['0.' + key], value)
    assert copy_[0].conv1.weight is not bb.layer4[1].conv1.weight
    # pooling, FC; with BN1d between them when the net is 1 deep (the
    # scheduled depth, not the number of blocks: here 2 and 2)
    assert isinstance(first.pool[2], torch.nn.Identity)
    assert isinstance(last.pool[2], torch.nn.Identity)
    shallow = build(dict(task=aug(1)), dict(task=1.0))
    assert isinstance(shallow.local_heads[0]['task'].pool[2],
                      torch.nn.BatchNorm1d)


def test_auglocal_keeps_gradient_isolation_and_plain_checkpoints(tmp_path):
    model = build(dict(task=aug(2)), dict(task=1.0),
                  boundaries=('layer1.1', 'layer4.0'))
    data = model.data_preprocessor(cls_batch(), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    for k, group in ((1, 0), (2, 1)):
        local = losses[f'local{k}.loss_task']
        names = grads_of(local, model)
        ids = {id(p) for p in model.module_parameters()[group]}
        own = {n for n, p in model.named_parameters() if id(p) in ids}
        assert names and names <= own
        assert any(n.startswith('architecture.backbone') for n in names)
        assert any(n.startswith(f'local_heads.{group}.') for n in names)
    # the real layer4.1 learns from the task loss only
    names = grads_of(losses['loss'], model)
    assert any('layer4.1' in n for n in names)
    assert not any('local_heads' in n for n in names)
    log = model.train_step(cls_batch(), optim_wrapper(model))
    assert torch.isfinite(log['loss'])
    torch.save(model.plain_state_dict(), tmp_path / 'plain.pth')
    plain = MODELS.build(tiny_resnet_classifier())
    plain.load_state_dict(torch.load(tmp_path / 'plain.pth'), strict=True)


def test_auglocal_fails_loudly_without_depth_or_later_layers():
    with pytest.raises(ValueError, match='needs `depth`'):
        AugLocalHead(16, 1, num_classes=5)
    with pytest.raises(ValueError, match='basic layers after its module'):
        AugLocalHead(16, 1, num_classes=5, depth=2)


def bottleneck_deeplabv3():
    """ResNetV1c-50-D8 (width 16) DeepLabV3."""
    arch = tiny_deeplabv3()
    arch.backbone.depth = 50
    arch.decode_head.in_channels = 512
    arch.auxiliary_head.in_channels = 256
    return arch


def seg_bottleneck_model(heads):
    """:func:`bottleneck_deeplabv3` cut after layer1.1 (K=2)."""
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = InfoPro(
            architecture=bottleneck_deeplabv3(),
            split=dict(boundaries=['layer1.1']),
            local_heads=heads,
            loss_weights=dict(task=1.0))
        model.init_weights()
    return model


def test_auglocal_seg_head_builds_bottlenecks_of_the_dilated_layers():
    assert MODELS.get('AugLocalSegHead') is AugLocalSegHead
    model = seg_bottleneck_model(
        dict(task=dict(type='infopro_mm.AugLocalSegHead', depth=2)))
    head = model.local_heads[0]['task']
    bb = model.architecture.backbone
    # basic layer 1 of 16: layers round(1 + 14 / 2 j) = 8, 15
    assert head.sampled_names == ['layer3.1', 'layer4.2']
    assert head.copied_names == []  # 64 ch at stride 4 feeds neither
    first, second = head.blocks
    # a fresh bottleneck of layer3.1's widths: 64 -> mid 64 -> 256, the
    # 3x3 strided (stride 4 -> 8) and dilated 2 like layer3.1's
    reduce, middle, expand = first.branch[0][0], first.branch[1][0], \
        first.branch[2]
    assert (reduce.in_channels, reduce.out_channels) == (64, 64)
    assert bb.layer3[1].conv2.out_channels == 64
    assert middle.stride == (2, 2) and middle.dilation == (2, 2)
    assert middle.padding == (2, 2)
    assert expand.out_channels == 256
    # layer4.2: 256 -> mid 128 -> 512, stride 1, dilation 4
    middle = second.branch[1][0]
    assert second.branch[0][0].out_channels == 128
    assert middle.stride == (1, 1) and middle.dilation == (4, 4)
    assert second.branch[2].out_channels == 512
    assert head.ignore_index == 255 and head.cls_seg[1].out_channels == 4
    assert not hasattr(head, 'fc')
    feat = torch.randn(2, 64, 16, 16)
    assert head(feat).shape == (2, 4, 8, 8)
    # fresh blocks take norm_cfg (SyncBN beside a SyncBN architecture)
    synced = seg_bottleneck_model(
        dict(task=dict(type='infopro_mm.AugLocalSegHead', depth=2,
                       norm_cfg=dict(type='SyncBN'))))
    norms = [m for m in synced.local_heads[0]['task'].blocks.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) == 8  # 2 blocks x (3 in the branch + projection)
    assert all(isinstance(m, torch.nn.SyncBatchNorm) for m in norms)


def test_auglocal_seg_head_trains_its_module_only(tmp_path):
    model = seg_bottleneck_model(
        dict(task=dict(type='infopro_mm.AugLocalSegHead', depth=2)))
    data = model.data_preprocessor(seg_batch(), True)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    local = losses['local1.loss_task']
    assert torch.isfinite(local) and local > 0
    ids = {id(p) for p in model.module_parameters()[0]}
    own = {n for n, p in model.named_parameters() if id(p) in ids}
    names = grads_of(local, model)
    assert names and names <= own
    assert any(n.startswith('local_heads.0.task.blocks') for n in names)
    # ignored pixels only: 0, not NaN
    for sample in data['data_samples']:
        sample.gt_sem_seg.data[:] = 255
    head = model.local_heads[0]['task']
    zero = head.loss(torch.randn(2, 64, 16, 16),
                     LocalBatch(data['inputs'], data['data_samples']))
    assert zero.item() == 0.
    with pytest.raises(ValueError, match='gt_sem_seg'):
        head.loss(torch.randn(2, 64, 16, 16), LocalBatch(data['inputs']))
    log = model.train_step(seg_batch(), optim_wrapper(model))
    assert torch.isfinite(log['loss'])
    torch.save(model.plain_state_dict(), tmp_path / 'plain.pth')
    with DefaultScope.overwrite_default_scope('mmseg'):
        plain = MODELS.build(bottleneck_deeplabv3())
    plain.load_state_dict(torch.load(tmp_path / 'plain.pth'), strict=True)


# ------------------------------------------------------ memory planning
def test_planner_profiles_the_successor_heads():
    """InfoPro*'s profile measures these heads as built at every layer."""
    profiles = {
        name: build(heads, dict(task=1.0)).profile_memory((32, 32), 2)
        for name, heads in (('plain', dict(task=CLS)),
                            ('man', dict(task=man(CLS))),
                            ('auglocal', dict(task=aug(2))))
    }
    plain, with_man, auglocal = (profiles[n]['head_bytes']
                                 for n in ('plain', 'man', 'auglocal'))
    # the copies' activations come on top of the classifier's (9 layers;
    # no head can follow the last one)
    assert all(m > p > 0 for m, p in zip(with_man[:-1], plain[:-1]))
    assert all(a > 0 for a in auglocal[:-1])
    assert with_man[-1] == auglocal[-1] == 0
    # the planner runs with them
    torch.manual_seed(0)
    model = InfoPro(
        architecture=tiny_resnet_classifier(),
        split=dict(
            num_modules=3, policy='balanced', input_size=(32, 32),
            batch_size=2),
        local_heads=dict(task=man(CLS)),
        loss_weights=dict(task=1.0))
    assert len(model.splitter.cuts) == 2
    assert model.memory_profile['head_bytes'] == with_man
