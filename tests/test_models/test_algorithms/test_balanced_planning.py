"""InfoPro* memory planning on the paper's networks and on tiny ones."""
import pytest
import torch
from mmengine.hub import get_config
from mmengine.registry import DefaultScope
from tiny_models import SEG_HEADS, tiny_deeplabv3

from infopro_mm.models import InfoPro, plan_balanced_cuts

PAPER_SEG_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
    task=dict(type='infopro_mm.LocalSegHead'))
PAPER_CLS_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
    task=dict(type='infopro_mm.LocalClsHead', arch='large'))
WEIGHTS = dict(recon=1.0, task=1.0)


def paper_model(scope, config, heads, size, batch):
    cfg = get_config(config)
    cfg.model.pop('pretrained', None)
    with DefaultScope.overwrite_default_scope(scope):
        return InfoPro(
            architecture=cfg.model,
            split=dict(
                num_modules=2,
                policy='balanced',
                input_size=size,
                batch_size=batch),
            local_heads=heads,
            loss_weights=WEIGHTS)


@pytest.mark.slow
def test_deeplabv3_r101_k2_cut_falls_inside_layer3():
    model = paper_model(
        'mmseg',
        'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py',
        PAPER_SEG_HEADS, (512, 1024), 2)
    (boundary, ) = model.splitter.boundaries
    assert boundary.startswith('layer3.')
    profile = model.memory_profile
    e2e = sum(profile['layer_bytes']) + profile['tail_bytes']
    modules = profile.module_bytes(model.splitter.cuts)
    assert max(modules) < 0.6 * e2e
    # K=4 from the same measurement balances into about a third
    cuts, modules = plan_balanced_cuts(profile['layer_bytes'],
                                       profile['input_bytes'],
                                       profile['head_bytes'],
                                       profile['tail_bytes'], 4)
    assert max(modules) < 0.35 * e2e


@pytest.mark.slow
def test_resnet101_224_k2_cut_falls_inside_layer2():
    model = paper_model('mmpretrain',
                        'mmpretrain::resnet/resnet101_8xb32_in1k.py',
                        PAPER_CLS_HEADS, (224, 224), 32)
    (boundary, ) = model.splitter.boundaries
    assert boundary.startswith('layer2.')


def tiny_balanced(num_modules):
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        return InfoPro(
            architecture=tiny_deeplabv3(),
            split=dict(
                num_modules=num_modules,
                policy='balanced',
                input_size=(64, 64),
                batch_size=4),
            local_heads=SEG_HEADS,
            loss_weights=WEIGHTS)


def test_balanced_planning_is_deterministic_and_leaves_no_trace():
    first = tiny_balanced(3)
    second = tiny_balanced(3)
    assert first.splitter.boundaries == second.splitter.boundaries
    assert first.memory_profile == second.memory_profile
    assert len(first.splitter.boundaries) == 2
    # the dry run restores BN statistics and leaves the model in train mode
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(0)
        reference = InfoPro(
            architecture=tiny_deeplabv3(),
            split=dict(num_modules=3),
            local_heads=SEG_HEADS,
            loss_weights=WEIGHTS)
    for (name, a), b in zip(first.architecture.named_buffers(),
                            reference.architecture.buffers()):
        torch.testing.assert_close(a, b, msg=name)
    assert first.training


def test_explicit_boundaries_win_over_the_planner(caplog):
    # the demo's split with hand-set boundaries (issue: the planner's cut
    # silently replaced them)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = InfoPro(
            architecture=tiny_deeplabv3(),
            split=dict(
                boundaries=['layer3.0'],
                policy='balanced',
                input_size=(64, 64),
                batch_size=4),
            local_heads=SEG_HEADS,
            loss_weights=WEIGHTS)
    assert model.splitter.boundaries == ['layer3.0']
    assert model.splitter.policy is None
    assert model.memory_profile is None
    planned = tiny_balanced(2).splitter.boundaries
    assert planned != ['layer3.0']  # else this test proves nothing


def test_balanced_beats_uniform_on_the_largest_module():
    model = tiny_balanced(3)
    profile = model.memory_profile
    balanced = max(profile.module_bytes(model.splitter.cuts))
    from infopro_mm.models import uniform_cuts
    uniform = max(profile.module_bytes(uniform_cuts(len(profile['names']),
                                                    3)))
    assert balanced <= uniform


def test_profile_scales_exactly_with_batch_and_area():
    model = tiny_balanced(2)
    small = model.profile_memory((64, 64), 1)
    large = model.profile_memory((128, 128), 2)
    for key in ('layer_bytes', 'head_bytes'):
        for a, b in zip(small[key], large[key]):
            assert b == pytest.approx(8 * a, rel=0.02)
