"""InfoPro on every supported backbone family: isolation, K=1, planner
(DESIGN.md §3.10)."""
import copy

import pytest
import torch
from mmengine.registry import DefaultScope
from test_infopro import GradRecorder
from tiny_models import (CLS_HEADS, FAMILIES, SEG_HEADS, cls_batch,
                         seg_batch, tiny_family_model)
from torch.testing import assert_close

from infopro_mm.models import InfoPro, plan_balanced_cuts
from infopro_mm.registry import MODELS

SEG_FAMILIES = ['mmseg-swin', 'convnext', 'mit', 'mmseg-vit']
CLS_FAMILIES = ['convnext-gap', 'mmpretrain-vit-avg']


def scope_of(family):
    return 'mmpretrain' if family in CLS_FAMILIES else 'mmseg'


def batch_of(family):
    return cls_batch(num_classes=4) if family in CLS_FAMILIES else seg_batch()


def build(family, **split):
    torch.manual_seed(0)
    heads = CLS_HEADS if family in CLS_FAMILIES else SEG_HEADS
    with DefaultScope.overwrite_default_scope(scope_of(family)):
        return InfoPro(
            architecture=tiny_family_model(family),
            split=split or dict(boundaries=[FAMILIES[family][2]]),
            local_heads=heads,
            loss_weights=dict(recon=1.5, task=1.0))


@pytest.mark.parametrize('family', SEG_FAMILIES + CLS_FAMILIES)
def test_local_backward_reaches_only_its_module(family):
    model = build(family)
    assert type(model.splitter).__name__ == FAMILIES[family][3]
    wrapper = GradRecorder(model)
    model.train_step(batch_of(family), wrapper)
    (layers, _) = model.splitter.module_layers()
    module1 = {id(p) for layer in layers for p in layer.parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    heads = {n for n, _ in model.named_parameters()
             if n.startswith('local_heads.0')}
    assert wrapper.after_local == [{names[i] for i in module1} | heads]
    # the task loss adds nothing to module 1: with the local weights at 0,
    # module 1 gets no gradient although its outputs reach the decode head
    model = build(family)
    model.weight_factors.update(recon=0., task=0.)
    wrapper = GradRecorder(model)
    model.train_step(batch_of(family), wrapper)
    assert wrapper.after_local == []
    assert not {names[i] for i in module1} & set(wrapper.grads)
    assert len(wrapper.grads) > 0


@pytest.mark.parametrize('family', SEG_FAMILIES + CLS_FAMILIES)
def test_k1_equals_plain_architecture(family):
    model = build(family, num_modules=1)
    with DefaultScope.overwrite_default_scope(scope_of(family)):
        plain = MODELS.build(tiny_family_model(family))
    plain.load_state_dict(model.plain_state_dict())
    data = batch_of(family)
    wrapper = GradRecorder(model)
    log_vars = model.train_step(copy.deepcopy(data), wrapper)
    plain_wrapper = GradRecorder(plain)
    plain_log_vars = plain.train_step(copy.deepcopy(data), plain_wrapper)
    for key, value in plain_log_vars.items():
        assert_close(log_vars[key], value)
    assert len(wrapper.grads) == len(plain_wrapper.grads)
    for name, grad in plain_wrapper.grads.items():
        assert_close(wrapper.grads['architecture.' + name], grad, msg=name)


@pytest.mark.parametrize('family', SEG_FAMILIES + CLS_FAMILIES)
def test_balanced_planner_and_memory_profile(family):
    size = (32, 32) if family in CLS_FAMILIES else (64, 64)
    model = build(family, num_modules=3, policy='balanced', input_size=size)
    profile = model.memory_profile
    names = [layer.name for layer in model.splitter.basic_layers]
    assert profile['names'] == names
    assert all(b > 0 for b in profile['layer_bytes'])
    assert all(b > 0 for b in profile['head_bytes'])
    assert profile['tail_bytes'] > 0
    cuts, _ = plan_balanced_cuts(profile['layer_bytes'],
                                 profile['input_bytes'],
                                 profile['head_bytes'],
                                 profile['tail_bytes'], 3)
    assert model.splitter.cuts == cuts and len(cuts) == 2
    assert len(model.local_heads) == 2
    model.train_step(batch_of(family), GradRecorder(model))


@pytest.mark.parametrize('family', ['mit', 'mmseg-vit', 'mmseg-swin',
                                    'convnext'])
def test_memory_profile_extrapolates_to_the_full_resolution(family):
    """The profile runs at 256x256 and extrapolates to 512x512: linear in
    the area for conv / window attention, with a fitted quadratic term
    where attention maps grow with the square of the area (MiT, ViT)."""
    model = build(family, num_modules=2)
    profile = model.profile_memory((512, 512), batch_size=2)
    exact = model._dry_run((512, 512), False)  # 2 samples = batch_size
    for key in ('layer_bytes', 'head_bytes', 'input_bytes'):
        assert profile[key] == pytest.approx(exact[key], rel=0.01), key
    assert profile['tail_bytes'] == pytest.approx(exact['tail_bytes'][0],
                                                  rel=0.01)
    if model.splitter.quadratic_in_area:
        model.splitter.quadratic_in_area = False
        linear = model.profile_memory((512, 512), batch_size=2)
        assert sum(linear['layer_bytes']) < 0.8 * sum(exact['layer_bytes'])
