"""ResNetSplitter: basic layers, split specs, staged forward, bad input."""
import pytest
import torch
from mmengine.registry import DefaultScope

from infopro_mm.models import ResNetSplitter, uniform_cuts
from infopro_mm.registry import MODELS

BACKBONES = [
    ('mmseg', dict(type='ResNetV1c', depth=18, base_channels=8,
                   stem_channels=8, dilations=(1, 1, 2, 4),
                   strides=(1, 2, 1, 1))),
    ('mmseg', dict(type='ResNet', depth=50, base_channels=8)),
    ('mmdet', dict(type='ResNet', depth=18, base_channels=8,
                   out_indices=(0, 1, 2, 3))),
    ('mmdet', dict(type='ResNeXt', depth=50, groups=4, base_width=4,
                   base_channels=8)),
    ('mmpretrain', dict(type='ResNetV1d', depth=18, base_channels=8,
                        stem_channels=8, out_indices=(1, 3))),
    ('mmpretrain', dict(type='ResNeXt', depth=50, groups=4, width_per_group=4,
                        base_channels=8)),
    ('mmpretrain', dict(type='ResNet_CIFAR', depth=18, base_channels=8,
                        out_indices=(2, 3))),
]


def build(scope, cfg):
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


@pytest.mark.parametrize('scope,cfg', BACKBONES)
def test_staged_forward_equals_backbone_forward(scope, cfg):
    torch.manual_seed(0)
    backbone = build(scope, cfg)
    splitter = ResNetSplitter(backbone, num_modules=3)
    num_blocks = sum(len(getattr(backbone, n)) for n in backbone.res_layers)
    assert len(splitter.basic_layers) == num_blocks + 1
    shapes = splitter.probe()  # raises if staged != own forward
    assert len(shapes) == len(splitter.basic_layers)
    x = torch.randn(2, 3, 64, 64)
    backbone.train()
    with torch.no_grad():
        torch.manual_seed(1)
        staged = splitter.forward(x)
        torch.manual_seed(1)
        own = backbone(x)
    assert len(staged) == len(own)
    for a, b in zip(staged, own):
        torch.testing.assert_close(a, b)


def test_basic_layers_and_boundaries_follow_the_paper():
    backbone = build('mmseg', dict(type='ResNetV1c', depth=101))
    splitter = ResNetSplitter(backbone, boundaries=['layer3.12'])
    names = [layer.name for layer in splitter.basic_layers]
    assert names[0] == 'stem' and names[-1] == 'layer4.2'
    assert len(names) == 1 + 3 + 4 + 23 + 3
    modules = splitter.module_layers()
    assert [len(m) for m in modules] == [1 + 3 + 4 + 13, 10 + 3]
    assert modules[0][-1].name == 'layer3.12'
    # parameters are the backbone's own objects, not copies
    ids = {id(p) for m in modules for layer in m for p in layer.parameters()}
    assert ids == {id(p) for p in backbone.parameters()}


def test_uniform_cuts_give_earlier_modules_fewer_layers():
    # paper Appendix F: ResNet-110 (55 basic layers)
    sizes = lambda cuts, n: [b - a for a, b in zip([-1, *cuts], [*cuts, n - 1])]  # noqa
    assert sizes(uniform_cuts(55, 4), 55) == [13, 14, 14, 14]
    assert sizes(uniform_cuts(55, 16), 55) == [3] * 9 + [4] * 7
    assert sizes(uniform_cuts(16, 8), 16) == [2] * 8
    assert uniform_cuts(10, 1) == []


def test_taps_of_finished_modules_are_detached():
    backbone = build('mmdet', dict(type='ResNet', depth=18, base_channels=8,
                                   out_indices=(0, 1, 2, 3)))
    splitter = ResNetSplitter(backbone, boundaries=['layer2.1'])
    ended = []
    outs = splitter.forward(
        torch.randn(1, 3, 64, 64), on_module_end=lambda k, h: ended.append(
            (k, h.requires_grad)))
    assert ended == [(0, True)]
    assert [o.requires_grad for o in outs] == [False, False, True, True]


@pytest.mark.parametrize('kwargs,match', [
    (dict(boundaries=['layer5.0']), "unknown split boundary 'layer5.0'"),
    (dict(boundaries=['layer2.7']), "unknown split boundary 'layer2.7'"),
    (dict(boundaries=['layer4.1']), 'would leave the last module empty'),
    (dict(boundaries=['layer3.0', 'layer2.0']), 'in network order'),
    (dict(num_modules=10), 'num_modules=10 is out of range'),
    (dict(num_modules=0), 'num_modules=0 is out of range'),
    (dict(), 'exactly one of'),
    (dict(boundaries=['stem'], num_modules=2),
     r'unset `num_modules` \(on the command line: --cfg-options '
     r'model.split.num_modules=None\)'),
    (dict(num_modules=2, policy='greedy'),
     "unknown split policy 'greedy': choose one of 'uniform', 'balanced', "
     "'time'"),
    (dict(num_modules=2, policy='balanced'), 'needs `input_size'),
    (dict(num_modules=2, policy='time', batch_size=8),
     r"policy='time' needs `input_size=\(H, W\)` and `batch_size`"),
    (dict(num_modules=2, policy='time', input_size=(32, 32)),
     r'`batch_size` \(per stage\).*batch_size=None'),
])
def test_bad_split_specs_name_the_problem(kwargs, match):
    backbone = build('mmseg', dict(type='ResNet', depth=18, base_channels=8))
    with pytest.raises(ValueError, match=match):
        ResNetSplitter(backbone, **kwargs)


def _graph_leaves(tensor):
    """The leaf tensors a backward from ``tensor`` accumulates into."""
    leaves, seen, stack = [], set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, 'variable'):
            leaves.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return leaves


def test_layers_run_alone_as_inside_and_at_the_start_of_a_module():
    backbone = build('mmseg', dict(type='ResNet', depth=18, base_channels=8))
    splitter = ResNetSplitter(backbone, num_modules=2)
    backbone.eval()
    x = torch.randn(1, 3, 32, 32)
    states = splitter.layer_states(x)
    assert len(states) == len(splitter.basic_layers) + 1
    assert not any(s.requires_grad for s in states)
    torch.testing.assert_close(states[-1], backbone(x)[-1])
    params = {id(p) for p in backbone.parameters()}
    for starts_module in (False, True):
        out = splitter.run_layer(3, states[3], starts_module)
        torch.testing.assert_close(out, states[4])
        inputs = [t for t in _graph_leaves(out) if id(t) not in params]
        # inside a module the backward computes the input gradient (the
        # previous layer needs it); at a module start it does not
        assert len(inputs) == (0 if starts_module else 1)
        if inputs:
            torch.testing.assert_close(inputs[0], states[3])


def test_unsupported_backbone_is_named():
    backbone = build('mmseg', dict(type='MobileNetV2', widen_factor=0.25))
    with pytest.raises(TypeError, match='MobileNetV2 is not supported'):
        ResNetSplitter(backbone, num_modules=2)


def _count_checkpoints(monkeypatch):
    """Count the blocks that really run under ``torch.utils.checkpoint``."""
    import torch.utils.checkpoint as cp
    calls = []
    original = cp.checkpoint

    def counting(function, *args, **kwargs):
        calls.append(args[0].requires_grad)
        kwargs.setdefault('use_reentrant', True)
        return original(function, *args, **kwargs)

    monkeypatch.setattr(cp, 'checkpoint', counting)
    return calls


def _local_step(splitter, x):
    """Module 1's local loss, then a task loss on the outputs; grads."""
    def on_module_end(k, h):
        (h.float() ** 2).mean().backward()

    outs = splitter.forward(x, on_module_end=on_module_end)
    sum(o.mean() for o in outs).backward()
    return {
        n: p.grad.clone()
        for n, p in splitter.backbone.named_parameters() if p.grad is not None
    }


@pytest.mark.parametrize('scope,cfg', [
    ('mmseg', dict(type='ResNetV1c', depth=18, base_channels=8,
                   stem_channels=8, out_indices=(0, 1, 2, 3))),
    ('mmpretrain', dict(type='ResNet', depth=50, base_channels=8,
                        out_indices=(3, ))),
])
def test_with_cp_checkpoints_the_block_after_each_boundary(
        scope, cfg, monkeypatch):
    torch.manual_seed(0)
    plain = build(scope, cfg)
    with_cp = build(scope, dict(cfg, with_cp=True))
    with_cp.load_state_dict(plain.state_dict())
    num_blocks = sum(len(getattr(plain, n)) for n in plain.res_layers)
    x = torch.randn(2, 3, 64, 64)
    calls = _count_checkpoints(monkeypatch)
    reference = _local_step(
        ResNetSplitter(plain, boundaries=['layer1.0', 'layer3.0']), x)
    assert calls == []  # without with_cp nothing changes
    splitter = ResNetSplitter(with_cp, boundaries=['layer1.0', 'layer3.0'])
    grads = _local_step(splitter, x)
    # every block checkpoints, including the first one after each boundary
    assert calls == [True] * num_blocks
    # same gradients (isolation kept: the boundary leaf's grad goes nowhere)
    assert grads.keys() == reference.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grad, reference[name], msg=name)


def test_with_cp_boundary_input_and_no_grad_paths():
    backbone = build('mmseg', dict(type='ResNet', depth=18, base_channels=8,
                                   with_cp=True))
    splitter = ResNetSplitter(backbone, boundaries=['layer2.0'])
    inputs = []
    layer = splitter.basic_layers[4]  # layer2.1, the first block of module 2
    handle = layer.modules[0].register_forward_pre_hook(
        lambda m, args: inputs.append(args[0]))
    seen = []
    splitter.forward(
        torch.randn(2, 3, 64, 64),
        on_module_end=lambda k, h: seen.append(h.requires_grad))
    assert seen == [True]
    (boundary, ) = inputs
    assert boundary.requires_grad and boundary.is_leaf
    assert boundary.grad_fn is None  # nothing flows back into module 1
    with torch.no_grad():  # inference: inputs are left alone
        splitter.forward(torch.randn(2, 3, 64, 64))
    assert not inputs[-1].requires_grad
    handle.remove()


def test_with_cp_after_frozen_stem_and_frozen_stages(monkeypatch):
    calls = _count_checkpoints(monkeypatch)
    # frozen stem: the first block's input needs no grad; it checkpoints now
    backbone = build('mmseg', dict(type='ResNet', depth=18, base_channels=8,
                                   with_cp=True, frozen_stages=0))
    ResNetSplitter(backbone, num_modules=1).forward(
        torch.randn(2, 3, 64, 64))
    assert calls == [True] * 8
    # frozen layer1 too: its blocks build no graph; layer2 on checkpoints
    calls.clear()
    backbone = build('mmseg', dict(type='ResNet', depth=18, base_channels=8,
                                   with_cp=True, frozen_stages=1))
    ResNetSplitter(backbone, num_modules=1).forward(
        torch.randn(2, 3, 64, 64))
    assert calls == [True] * 6
