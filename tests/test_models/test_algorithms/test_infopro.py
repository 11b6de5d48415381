"""InfoPro algorithm: DESIGN.md §3 invariants 1-6 on mmseg and mmpretrain."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.utils import is_list_of
from mmseg.utils import add_prefix
from tiny_models import (CLS_HEADS, SEG_HEADS, cls_batch, seg_batch,
                         tiny_deeplabv3, tiny_resnet_classifier)
from torch.testing import assert_close

from infopro_mm.engine import InfoProOptimWrapper
from infopro_mm.models import InfoPro
from infopro_mm.registry import MODELS
from infopro_mm.utils import SavedTensorTracker


class GradRecorder(InfoProOptimWrapper):
    """Records every parameter's gradient when the optimizer steps."""

    def __init__(self, model, **kwargs):
        super().__init__(
            torch.optim.SGD(model.parameters(), lr=0.), **kwargs)
        self.names = {id(p): n for n, p in model.named_parameters()}
        self.grads = None
        self.after_local = []

    def local_backward(self, loss, **kwargs):
        super().local_backward(loss, **kwargs)
        self.after_local.append({
            self.names[id(p)]
            for g in self.optimizer.param_groups for p in g['params']
            if p.grad is not None
        })

    def step(self, **kwargs):
        self.grads = {
            self.names[id(p)]: p.grad.clone()
            for g in self.optimizer.param_groups for p in g['params']
            if p.grad is not None
        }
        super().step(**kwargs)


def build_seg(boundaries=('layer2.0', ), heads=SEG_HEADS, **kwargs):
    torch.manual_seed(0)
    return InfoPro(
        architecture=tiny_deeplabv3(),
        split=dict(boundaries=list(boundaries)),
        local_heads=heads,
        loss_weights=dict(recon=1.5, task=1.0),
        **kwargs)


def build_cls(**split):
    torch.manual_seed(0)
    return InfoPro(
        architecture=tiny_resnet_classifier(),
        split=split or dict(num_modules=3),
        local_heads=CLS_HEADS,
        loss_weights=dict(recon=(1.0, 2.0), task=(0.5, 1.0)))


def images01(x, pre):
    return ((x * pre.std + pre.mean) / 255.).clamp(0, 1)


def task_total(losses):
    return sum(v for k, v in losses.items() if 'loss' in k)


def seg_reference(model, data):
    """Hand-written InfoPro step of the K=2 DeepLabV3 (cut after layer2.0)."""
    arch, bb = model.architecture, model.architecture.backbone
    data = model.data_preprocessor(data, True)
    x, samples = data['inputs'], data['data_samples']
    batch = model._local_batch(x, samples)
    assert_close(batch.images01, images01(x, model.data_preprocessor))
    t0 = bb.layer1(bb.maxpool(bb.stem(x)))
    h = bb.layer2[0](t0)
    heads = model.local_heads[0]
    local = (1.5 * heads['recon'].loss(h, batch) +
             1.0 * heads['task'].loss(h, batch))
    local.backward()
    t1 = bb.layer2[1](h.detach())
    t2 = bb.layer3(t1)
    t3 = bb.layer4(t2)
    feats = (t0.detach(), t1, t2, t3)
    losses = add_prefix(
        arch.decode_head.loss(feats, samples, arch.train_cfg), 'decode')
    losses.update(
        add_prefix(
            arch.auxiliary_head.loss(feats, samples, arch.train_cfg), 'aux'))
    total = task_total(losses)
    total.backward()
    return local, total


def cls_reference(model, data):
    """Hand-written K=3 step of ResNet_CIFAR-18 (9 basic layers: 3+3+3)."""
    arch, bb = model.architecture, model.architecture.backbone
    data = model.data_preprocessor(data, True)
    x, samples = data['inputs'], data['data_samples']
    batch = model._local_batch(x, samples)
    h = bb.layer1(bb.relu(bb.norm1(bb.conv1(x))))
    heads = model.local_heads[0]
    (1.0 * heads['recon'].loss(h, batch) +
     0.5 * heads['task'].loss(h, batch)).backward()
    h = bb.layer3[0](bb.layer2(h.detach()))
    heads = model.local_heads[1]
    (2.0 * heads['recon'].loss(h, batch) +
     1.0 * heads['task'].loss(h, batch)).backward()
    h = bb.layer4(bb.layer3[1](h.detach()))
    total = task_total(arch.head.loss(arch.neck((h, )), samples))
    total.backward()
    return total


def model_grads(model):
    return {
        n: p.grad.clone()
        for n, p in model.named_parameters() if p.grad is not None
    }


def test_seg_gradients_equal_hand_written_reference(mmseg_scope):
    model = build_seg()
    assert model.splitter.boundaries == ['layer2.0']
    data = seg_batch()
    wrapper = GradRecorder(model)
    log_vars = model.train_step(copy.deepcopy(data), wrapper)
    model.zero_grad(set_to_none=True)
    local, total = seg_reference(model, copy.deepcopy(data))
    reference = model_grads(model)
    assert set(wrapper.grads) == set(reference)
    for name, grad in reference.items():
        assert_close(wrapper.grads[name], grad, msg=name)
    assert_close(log_vars['loss'], total.detach())
    logged = sum(model.local_log_vars.values())
    assert_close(logged, local.detach())


def test_cls_gradients_equal_hand_written_reference(mmpretrain_scope):
    model = build_cls()
    assert model.splitter.boundaries == ['layer1.1', 'layer3.0']
    assert model.module_weights(0) == dict(recon=1.0, task=0.5)
    assert model.module_weights(1) == dict(recon=2.0, task=1.0)
    data = cls_batch()
    wrapper = GradRecorder(model)
    model.train_step(copy.deepcopy(data), wrapper)
    model.zero_grad(set_to_none=True)
    cls_reference(model, copy.deepcopy(data))
    reference = model_grads(model)
    assert set(wrapper.grads) == set(reference)
    for name, grad in reference.items():
        assert_close(wrapper.grads[name], grad, msg=name)


def test_local_backward_reaches_only_its_module(mmseg_scope):
    """Invariant 1: after module 1's local backward, only module 1 and its
    heads hold gradients; the task loss adds none to module 1."""
    model = build_seg()
    wrapper = GradRecorder(model)
    model.train_step(seg_batch(), wrapper)
    module1 = {'architecture.backbone.' + n for n, _ in
               model.architecture.backbone.named_parameters()
               if n.startswith(('stem', 'layer1', 'layer2.0'))}
    heads = {n for n, _ in model.named_parameters()
             if n.startswith('local_heads.0')}
    assert wrapper.after_local == [module1 | heads]

    # With both local weights at zero, module 1 gets no gradient at all:
    # the task loss never reaches it through the detached boundary.
    model = build_seg()
    model.weight_factors.update(recon=0., task=0.)
    wrapper = GradRecorder(model)
    model.train_step(seg_batch(), wrapper)
    assert wrapper.after_local == []
    assert not module1 & set(wrapper.grads)
    assert 'architecture.backbone.layer2.1.conv1.weight' in wrapper.grads


def live_bytes_at_module2(model, data):
    tracker = SavedTensorTracker(ignore=model)
    seen = []
    block = model.architecture.backbone.layer2[1]
    handle = block.register_forward_pre_hook(
        lambda *_: seen.append(tracker.live_bytes))
    with tracker:
        model.train_step(data, GradRecorder(model))
    handle.remove()
    return seen[0], tracker.peak_bytes


def test_module_activations_freed_before_next_module(mmseg_scope):
    """Invariant 2: nothing of module 1 is saved when module 2 starts."""
    live, peak = live_bytes_at_module2(build_seg(), seg_batch())
    live_e2e, peak_e2e = live_bytes_at_module2(
        build_seg(boundaries=()), seg_batch())
    assert live == 0
    assert live_e2e > 0
    assert peak < peak_e2e


@pytest.mark.parametrize('scope,build,cfg,batch', [
    ('mmseg', lambda: build_seg(boundaries=()), tiny_deeplabv3, seg_batch),
    ('mmpretrain', lambda: build_cls(num_modules=1), tiny_resnet_classifier,
     cls_batch),
])
def test_k1_equals_plain_architecture(scope, build, cfg, batch):
    """Invariant 3: K = 1 gives the plain model's losses and gradients."""
    with DefaultScope.overwrite_default_scope(scope):
        model = build()
        torch.manual_seed(0)
        plain = MODELS.build(cfg())
    plain.load_state_dict(model.plain_state_dict())
    assert model.splitter.num_modules == 1
    data = batch()
    wrapper = GradRecorder(model)
    log_vars = model.train_step(copy.deepcopy(data), wrapper)
    plain_wrapper = GradRecorder(plain)
    plain_log_vars = plain.train_step(copy.deepcopy(data), plain_wrapper)
    for key, value in plain_log_vars.items():
        assert_close(log_vars[key], value)
    assert len(wrapper.grads) == len(plain_wrapper.grads)
    for name, grad in plain_wrapper.grads.items():
        assert_close(wrapper.grads['architecture.' + name], grad, msg=name)


def test_predict_and_checkpoint_are_plain(mmseg_scope, tmp_path):
    """Invariants 4 and 5: after InfoPro training, predictions equal a plain
    mmseg model loaded strictly from the exported state dict."""
    model = build_seg()
    optim = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    for seed in range(2):
        model.train_step(seg_batch(seed=seed), optim)
    assert 'forward' not in vars(model.architecture.backbone)
    plain = MODELS.build(tiny_deeplabv3())
    torch.save(model.plain_state_dict(), tmp_path / 'plain.pth')
    plain.load_state_dict(torch.load(tmp_path / 'plain.pth'), strict=True)
    model.eval()
    plain.eval()
    data = seg_batch(seed=5)
    ours = model.test_step(copy.deepcopy(data))
    theirs = plain.test_step(copy.deepcopy(data))
    for a, b in zip(ours, theirs):
        assert_close(a.seg_logits.data, b.seg_logits.data)
        assert torch.equal(a.pred_sem_seg.data, b.pred_sem_seg.data)
    inputs = model.data_preprocessor(copy.deepcopy(data), False)['inputs']
    assert_close(model(inputs, mode='tensor'), plain(inputs, mode='tensor'))


def test_loss_mode_returns_every_term_with_train_step_gradients(
        mmseg_scope):
    model = build_seg()
    data = seg_batch()
    wrapper = GradRecorder(model)
    model.train_step(copy.deepcopy(data), wrapper)
    model.zero_grad(set_to_none=True)
    processed = model.data_preprocessor(copy.deepcopy(data), True)
    losses = model(**processed, mode='loss')
    assert {'local1.loss_recon', 'local1.loss_task', 'decode.loss_ce',
            'aux.loss_ce'} <= set(losses)
    model.parse_losses(losses)[0].backward()
    for name, grad in model_grads(model).items():
        assert_close(wrapper.grads[name], grad, msg=name)


def test_accumulation_matches_reference(mmseg_scope):
    """Invariant 6: accumulative_counts=2 gives one step on the averaged
    gradients of two iterations; counters advance once per iteration."""
    model, reference = build_seg(), build_seg()
    optim = InfoProOptimWrapper(
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        accumulative_counts=2)
    steps = []
    step = optim.optimizer.step
    optim.optimizer.step = lambda *a, **k: (steps.append(1), step(*a, **k))
    batches = [seg_batch(seed=1), seg_batch(seed=2)]
    for data in batches:
        model.train_step(copy.deepcopy(data), optim)
    assert optim.inner_count == 2
    assert len(steps) == 1

    ref_optim = torch.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    for data in batches:
        processed = reference.data_preprocessor(copy.deepcopy(data), True)
        loss = reference.parse_losses(reference(**processed, mode='loss'))[0]
        (loss / 2).backward()
    ref_optim.step()
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert_close(p, q, msg=name)


def test_missing_local_heads_is_an_error(mmseg_scope):
    with pytest.raises(ValueError, match='need `local_heads`'):
        build_seg(heads=None)


def test_plain_optim_wrapper_is_rejected(mmseg_scope):
    from mmengine.optim import OptimWrapper
    model = build_seg()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match='InfoProOptimWrapper'):
        model.train_step(seg_batch(), optim)


def test_unknown_loss_weight_name_is_an_error(mmseg_scope):
    with pytest.raises(ValueError, match='match no local head'):
        InfoPro(
            architecture=tiny_deeplabv3(),
            split=dict(boundaries=['layer2.0']),
            local_heads=SEG_HEADS,
            loss_weights=dict(reconstruction=1.0))


def test_missing_loss_weight_is_an_error(mmseg_scope):
    with pytest.raises(ValueError, match=r"local heads \['task'\] have no "
                       'loss weight'):
        InfoPro(
            architecture=tiny_deeplabv3(),
            split=dict(boundaries=['layer2.0']),
            local_heads=SEG_HEADS,
            loss_weights=dict(recon=1.0))


def test_init_weights_reaches_the_local_heads(mmseg_scope):
    model = build_seg()
    conv = model.local_heads[0]['recon'].out_conv
    conv.weight.data.zero_()
    model.init_weights()
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx(
        (2. / fan_out)**0.5, rel=0.3)


def test_dgl_preset_skips_the_decoder(mmseg_scope):
    """DGL: lambda1 = 0 by config; the decoder is never run."""
    model = InfoPro(
        architecture=tiny_deeplabv3(),
        split=dict(boundaries=['layer2.0']),
        local_heads=SEG_HEADS,
        loss_weights=dict(recon=0., task=1.))
    wrapper = GradRecorder(model)
    model.train_step(seg_batch(), wrapper)
    assert set(model.local_log_vars) == {'local1.loss_task'}
    assert not any(n.startswith('local_heads.0.recon') for n in wrapper.grads)
    assert is_list_of(list(model.local_log_vars.values()), torch.Tensor)


def test_runner_preprocessor_keeps_the_architectures_batch_augments():
    # mmpretrain's ImageClassifier turns `train_cfg.augments` (Mixup, CutMix)
    # into its preprocessor's batch augments; the runner's top-level
    # `data_preprocessor` dict that replaces that preprocessor has none
    architecture = dict(
        tiny_resnet_classifier(),
        train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8)]))
    runner_dict = dict(
        mean=[125.307, 122.961, 113.8575],
        std=[51.5865, 50.847, 51.255],
        num_classes=5)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        # (ImageClassifier adds them to the dict it is given: give a copy)
        plain = MODELS.build(
            dict(architecture, data_preprocessor=copy.deepcopy(runner_dict)))
        model = InfoPro(
            architecture=architecture,
            split=dict(num_modules=2),
            local_heads=CLS_HEADS,
            loss_weights=dict(recon=1.0, task=1.0),
            data_preprocessor=runner_dict)
    assert plain.data_preprocessor.batch_augments is not None
    augments = model.data_preprocessor.batch_augments
    assert [type(a).__name__ for a in augments.augments] == ['Mixup']
    assert model.architecture.data_preprocessor is model.data_preprocessor
    torch.manual_seed(0)
    data = model.data_preprocessor(cls_batch(num=4, num_classes=5), True)
    scores = torch.stack([s.gt_score for s in data['data_samples']])
    assert scores.shape == (4, 5) and (scores < 1).any()
    model.train_step(cls_batch(num=4, num_classes=5), GradRecorder(model))
