"""CIFARResNet: the He et al. (2016) CIFAR ResNets as the InfoPro authors
build them, and the authors' split tables on it."""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.utils import import_modules_from_strings
from torch import nn

from infopro_mm.models import CIFARResNet, ResNetSplitter, uniform_cuts
from infopro_mm.registry import MODELS

DEPTHS = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}

# The authors' split points (networks/configs.py of
# blackfeather-wang/InfoPro-Pytorch, 'Experiments on CIFAR-SVHN-STL10'):
# [stage, block] after which a local module ends; stage 0 is the stem.
AUTHORS_SPLITS = {
    32: {
        2: [[2, 1]],
        3: [[1, 4], [2, 4]],
        4: [[1, 2], [2, 1], [3, 0]],
        8: [[1, 0], [1, 2], [1, 4], [2, 1], [2, 3], [3, 0], [3, 2]],
        16: [[0, 0], [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [2, 0], [2, 1],
             [2, 2], [2, 3], [2, 4], [3, 0], [3, 1], [3, 2], [3, 3]],
    },
    110: {
        2: [[2, 8]],
        3: [[1, 17], [2, 17]],
        4: [[1, 11], [2, 7], [3, 3]],
        8: [[1, 4], [1, 11], [2, 0], [2, 7], [2, 14], [3, 3], [3, 10]],
        16: [[1, 1], [1, 4], [1, 7], [1, 10], [1, 13], [1, 16], [2, 1],
             [2, 4], [2, 7], [2, 11], [2, 15], [3, 1], [3, 5], [3, 9],
             [3, 13]],
    },
}
# InfoPro* (memory-balanced) splits of ResNet-110 for CIFAR-10.
AUTHORS_BALANCED_SPLITS = {
    2: [[1, 14]],
    3: [[1, 9], [2, 2]],
    4: [[1, 6], [1, 14], [2, 8]],
}
# Where the tables differ from the paper's uniform rule (Appendix F: earlier
# modules get one basic layer fewer): (depth, K) -> per-cut offset in basic
# layers, table minus uniform. Every other (depth, K) agrees exactly.
DIFFER_FROM_UNIFORM = {
    (32, 3): [1, 1],  # table 6/5/5 basic layers, uniform 5/5/6
    (110, 2): [1],  # table 28/27, uniform 27/28
    (110, 3): [1, 1],  # table 19/18/18, uniform 18/18/19
}


def boundary_names(split):
    """The authors' [stage, block] pairs as ResNetSplitter boundaries."""
    return ['stem' if s == 0 else f'layer{s}.{b}' for s, b in split]


def image_classifier_cfg(depth):
    return dict(
        type='ImageClassifier',
        backbone=dict(type='infopro_mm.CIFARResNet', depth=depth),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=10,
            in_channels=64,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def build_classifier(depth):
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            custom_imports=dict(imports=['infopro_mm']),
            model=image_classifier_cfg(depth)))
    import_modules_from_strings(**cfg.custom_imports)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('depth,blocks', DEPTHS.items())
def test_depth_gives_n_basic_blocks_per_stage(depth, blocks):
    backbone = CIFARResNet(depth)
    assert backbone.res_layers == ['layer1', 'layer2', 'layer3']
    assert [len(getattr(backbone, n)) for n in backbone.res_layers] == \
        [blocks] * 3
    assert all(
        type(block).__name__ == 'BasicBlock'
        for name in backbone.res_layers for block in getattr(backbone, name))
    assert not hasattr(backbone, 'maxpool')
    assert backbone.conv1.kernel_size == (3, 3)
    assert backbone.conv1.stride == (1, 1)
    assert backbone.conv1.out_channels == 16


@pytest.mark.parametrize('depth', [32, 110])
def test_channels_and_strides_per_basic_layer(depth):
    n = DEPTHS[depth]
    backbone = CIFARResNet(depth)
    shapes = ResNetSplitter(backbone, num_modules=1).probe()
    assert len(shapes) == 1 + 3 * n  # paper: 16 for ResNet-32, 55 for -110
    assert shapes == [(16, 1)] * (1 + n) + [(32, 2)] * n + [(64, 4)] * n
    out = backbone(torch.randn(2, 3, 32, 32))
    assert len(out) == 1 and out[0].shape == (2, 64, 8, 8)


def test_shortcuts_are_projections_only_where_the_shape_changes():
    backbone = CIFARResNet(32)
    with_projection = [
        f'{name}.{i}' for name in backbone.res_layers
        for i, block in enumerate(getattr(backbone, name))
        if block.downsample is not None
    ]
    assert with_projection == ['layer2.0', 'layer3.0']
    conv, norm = backbone.layer2[0].downsample
    assert isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2)


def test_init_is_kaiming_fan_out_and_no_zero_init_residual():
    torch.manual_seed(0)
    backbone = CIFARResNet(32)
    backbone.init_weights()
    for module in backbone.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1)  # last BN of a branch too
            assert torch.all(module.bias == 0)
    conv = backbone.layer3[1].conv1  # 64 * 64 * 9 weights
    fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    assert conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / fan_out), rel=0.03)


def test_parameter_counts_with_a_10_class_linear_head():
    # He et al. (2016) Table 6: ResNet-32 0.46 M, ResNet-110 1.7 M, counted
    # with parameter-free "option A" shortcuts. The authors' 1x1 conv + BN
    # projections add 16*32 + 2*32 + 32*64 + 2*64 = 2,752 parameters, which
    # lifts ResNet-32 from 0.464 M to 0.467 M (0.47 M when rounded).
    projections = 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64
    counts = {}
    for depth in (32, 110):
        model = build_classifier(depth)
        counts[depth] = sum(p.numel() for p in model.parameters())
    assert counts == {32: 466_906, 110: 1_730_714}
    assert round((counts[32] - projections) / 1e6, 2) == 0.46
    assert round(counts[32] / 1e6, 2) == 0.47
    assert round(counts[110] / 1e6, 1) == 1.7
    assert round((counts[110] - projections) / 1e6, 1) == 1.7


def test_builds_inside_an_mmpretrain_image_classifier():
    model = build_classifier(32)
    assert type(model).__name__ == 'ImageClassifier'
    assert isinstance(model.backbone, CIFARResNet)
    model.eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 32, 32), mode='tensor')
    assert logits.shape == (2, 10)


@pytest.mark.parametrize('depth', [0, 18, 34, 50, 33, 1202])
def test_bad_depth_raises_listing_the_accepted_ones(depth):
    with pytest.raises(ValueError, match=r'\[20, 32, 44, 56, 110\]'):
        CIFARResNet(depth)


def test_fixed_layout_arguments_are_refused():
    with pytest.raises(TypeError, match='base_channels'):
        CIFARResNet(32, base_channels=64)


@pytest.mark.parametrize('depth,num_modules', [
    (depth, k) for depth, table in AUTHORS_SPLITS.items() for k in table
])
def test_authors_splits_against_the_uniform_rule(depth, num_modules):
    split = AUTHORS_SPLITS[depth][num_modules]
    backbone = CIFARResNet(depth)
    splitter = ResNetSplitter(backbone, boundaries=boundary_names(split))
    assert splitter.num_modules == num_modules
    assert splitter.boundaries == boundary_names(split)
    uniform = ResNetSplitter(backbone, num_modules=num_modules)
    num_layers = 1 + 3 * DEPTHS[depth]
    assert uniform.cuts == uniform_cuts(num_layers, num_modules)
    offsets = [a - b for a, b in zip(splitter.cuts, uniform.cuts)]
    expected = DIFFER_FROM_UNIFORM.get((depth, num_modules),
                                       [0] * (num_modules - 1))
    assert offsets == expected


@pytest.mark.parametrize('num_modules', AUTHORS_BALANCED_SPLITS)
def test_authors_balanced_splits_are_accepted(num_modules):
    split = AUTHORS_BALANCED_SPLITS[num_modules]
    splitter = ResNetSplitter(
        CIFARResNet(110), boundaries=boundary_names(split))
    assert splitter.num_modules == num_modules
    # InfoPro* puts the cuts earlier than the uniform rule (the early,
    # high-resolution blocks need the most memory).
    assert all(
        a < b for a, b in zip(splitter.cuts, uniform_cuts(55, num_modules)))
