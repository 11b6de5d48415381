"""Swin, ConvNeXt, MiT and ViT splitters: staged forward, names, choice,
gradient isolation against hand-written references (DESIGN.md §3.10)."""
import pytest
import torch
from tiny_models import FAMILIES, build_backbone
from torch.testing import assert_close

from infopro_mm.models import ResNetSplitter, SwinSplitter, splitter_for
from infopro_mm.registry import MODELS


@pytest.mark.parametrize('family', list(FAMILIES))
@pytest.mark.parametrize('size', [(32, 32), (64, 32)])
def test_staged_forward_equals_backbone_forward(family, size):
    torch.manual_seed(0)
    backbone = build_backbone(family)
    splitter_cls = splitter_for(backbone)
    assert splitter_cls is MODELS.get(FAMILIES[family][3])
    splitter = splitter_cls(backbone, boundaries=[FAMILIES[family][2]])
    assert splitter.probe(32)  # raises if staged != own forward
    backbone.eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        staged, own = splitter.forward(x), backbone(x)
    assert len(staged) == len(own)
    for a, b in zip(staged, own):
        for a_part, b_part in zip(*(
                (t, ) if torch.is_tensor(t) else t for t in (a, b))):
            assert_close(a_part, b_part)


def test_every_parameter_belongs_to_a_basic_layer_or_an_output_norm():
    for family in FAMILIES:
        backbone = build_backbone(family)
        splitter = splitter_for(backbone)(backbone, num_modules=2)
        owned = {id(p) for layer in splitter.basic_layers
                 for p in layer.parameters()}
        rest = {n for n, p in backbone.named_parameters()
                if id(p) not in owned}
        # output norms are the downstream's (trained by the task loss)
        assert all(n.startswith(('norm', 'ln2')) for n in rest), (family,
                                                                  rest)


@pytest.mark.parametrize('family,size,channels_strides', [
    ('mmseg-swin', 64, [(16, 4), (16, 4), (16, 4), (32, 8), (64, 16),
                        (128, 32)]),
    ('convnext', 64, [(8, 4), (8, 4), (16, 8), (16, 16), (16, 16),
                      (32, 32)]),
    ('mit', 64, [(8, 4), (8, 4), (8, 8), (8, 8), (16, 16), (16, 32)]),
    ('mmseg-vit', 64, [(16, 8)] * 4),
])
def test_probe_gives_channels_and_strides(family, size, channels_strides):
    backbone = build_backbone(family)
    splitter = splitter_for(backbone)(backbone, num_modules=1)
    assert splitter.probe(size) == channels_strides


def test_boundary_names_and_the_error_listing_them():
    backbone = build_backbone('mmseg-swin')
    splitter = SwinSplitter(backbone, num_modules=3)
    assert [layer.name for layer in splitter.basic_layers] == [
        'patch_embed', 'stages.0.blocks.0', 'stages.0.blocks.1',
        'stages.1.blocks.0', 'stages.2.blocks.0', 'stages.3.blocks.0'
    ]
    assert splitter.boundaries == ['stages.0.blocks.0', 'stages.1.blocks.0']
    # patch merging of stage 0 runs with the first block of stage 1
    merge = backbone.stages[0].downsample
    assert splitter.basic_layers[3].modules == (merge,
                                                backbone.stages[1].blocks[0])
    with pytest.raises(
            ValueError,
            match=r"unknown split boundary 'stages\.4\.blocks\.0' for "
            r"SwinTransformer: valid boundaries are 'patch_embed', "
            r"'stages\.0\.blocks\.0'\.\.'stages\.0\.blocks\.1', "
            r"'stages\.1\.blocks\.0', 'stages\.2\.blocks\.0'$"):
        SwinSplitter(backbone, boundaries=['stages.4.blocks.0'])
    with pytest.raises(ValueError, match='would leave the last module'):
        SwinSplitter(backbone, boundaries=['stages.3.blocks.0'])


def test_wrong_family_and_unsupported_backbone_are_named():
    with pytest.raises(TypeError, match='MixVisionTransformer is not '
                       'supported by ResNetSplitter'):
        ResNetSplitter(build_backbone('mit'), num_modules=2)
    from mmseg.models.backbones import MobileNetV2
    with pytest.raises(TypeError) as info:
        splitter_for(MobileNetV2(widen_factor=0.25))
    message = str(info.value)
    assert 'cannot split a MobileNetV2 backbone' in message
    for name in ('ResNetSplitter', 'SwinSplitter', 'ConvNeXtSplitter',
                 'MiTSplitter', 'MMSegViTSplitter', 'MMPretrainViTSplitter'):
        assert name in message


# ----------------------------------------------------------------------
# gradient isolation: hand-written references
def local_loss(h):
    assert h.dim() == 4  # heads receive (N, C, H, W)
    return (h**2).mean()


def task_loss(outs):
    flat = [t for o in outs for t in ((o, ) if torch.is_tensor(o) else o)]
    return sum((t * torch.linspace(-1, 1, t.shape[1])[:, None, None]
                if t.dim() == 4 else t).pow(2).mean() for t in flat)


def nchw(seq, hw):
    return seq.transpose(1, 2).reshape(seq.shape[0], -1, *hw)


def swin_reference(bb, x):
    """mmseg Swin, cut after ``stages.1.blocks.0`` (end of stage 1)."""
    seq, hw = bb.patch_embed(x)
    seq = bb.drop_after_pos(seq)
    raw = []
    for i, stage in enumerate(bb.stages):
        if i == 2:
            local_loss(nchw(seq, hw)).backward()
            seq, raw = seq.detach(), [(r.detach(), s) for r, s in raw]
        if i > 0:
            seq, hw = bb.stages[i - 1].downsample(seq, hw)
        for block in stage.blocks:
            seq = block(seq, hw)
        raw.append((seq, hw))
    return [
        getattr(bb, f'norm{i}')(r).view(-1, *s, bb.num_features[i]).permute(
            0, 3, 1, 2) for i, (r, s) in enumerate(raw)
    ]


def convnext_reference(bb, x):
    """ConvNeXt, cut after ``stages.2.0`` (inside stage 2)."""
    raw = []
    for i, stage in enumerate(bb.stages):
        x = bb.downsample_layers[i](x)
        for j, block in enumerate(stage):
            x = block(x)
            if (i, j) == (2, 0):
                local_loss(x).backward()
                x, raw = x.detach(), [r.detach() for r in raw]
        raw.append(x)
    return [getattr(bb, f'norm{i}')(r) for i, r in enumerate(raw)]


def mit_reference(bb, x):
    """MiT, cut after ``layers.1.blocks.0`` (inside stage 1)."""
    outs = []
    for i, (patch_embed, blocks, norm) in enumerate(bb.layers):
        x, hw = patch_embed(x)
        for j, block in enumerate(blocks):
            x = block(x, hw)
            if (i, j) == (1, 0):
                local_loss(nchw(x, hw)).backward()
                x, outs = x.detach(), [o.detach() for o in outs]
        x = nchw(norm(x), hw)
        outs.append(x)
    return outs


def mmseg_vit_reference(bb, x):
    """mmseg ViT (``out_origin``, outputs 0 and 2), cut after
    ``layers.0``."""
    seq, hw = bb.patch_embed(x)
    seq = torch.cat((bb.cls_token.expand(2, -1, -1), seq), dim=1)
    seq = bb._pos_embeding(seq, hw, bb.pos_embed)
    outs = [nchw(seq[:, 1:], hw)]
    seq = bb.layers[0](seq)
    outs.append(nchw(seq[:, 1:], hw))
    local_loss(nchw(seq[:, 1:], hw)).backward()
    seq, outs = seq.detach(), [o.detach() for o in outs]
    seq = bb.norm1(bb.layers[2](bb.layers[1](seq)))
    return outs + [nchw(seq[:, 1:], hw)]


def mmpretrain_vit_reference(bb, x):
    """mmpretrain ViT (``avg_featmap``), cut after ``layers.1``."""
    seq, _ = bb.patch_embed(x)
    seq = torch.cat((bb.cls_token.expand(2, -1, -1), seq), dim=1)
    seq = bb.pre_norm(bb.drop_after_pos(seq + bb.pos_embed))
    seq = bb.layers[1](bb.layers[0](seq))
    local_loss(nchw(seq[:, 1:], (4, 4))).backward()
    seq = bb.ln1(bb.layers[2](seq.detach()))
    return [bb.ln2(seq[:, 1:].mean(dim=1))]


REFERENCES = [
    ('mmseg-swin', 'stages.1.blocks.0', swin_reference),
    ('mmdet-swin', 'stages.1.blocks.0', swin_reference),
    ('convnext', 'stages.2.0', convnext_reference),
    ('mit', 'layers.1.blocks.0', mit_reference),
    ('mmseg-vit', 'layers.0', mmseg_vit_reference),
    ('mmpretrain-vit-avg', 'layers.1', mmpretrain_vit_reference),
]


def grads_of(backbone):
    return {
        n: p.grad.clone()
        for n, p in backbone.named_parameters() if p.grad is not None
    }


@pytest.mark.parametrize('family,boundary,reference', REFERENCES)
def test_gradients_equal_hand_written_reference(family, boundary,
                                                reference):
    torch.manual_seed(0)
    overrides = dict(out_indices=(0, 1, 2, 3)) if 'swin' in family else {}
    backbone = build_backbone(family, **overrides)
    backbone.eval()  # no dropout / drop path: the two runs must agree
    splitter = splitter_for(backbone)(backbone, boundaries=[boundary])
    x = torch.randn(2, 3, 32, 32)
    ended = []

    def on_module_end(k, h):
        ended.append(k)
        local_loss(h).backward()

    outs = splitter.forward(x, on_module_end=on_module_end)
    assert ended == [0]
    task_loss(outs).backward()
    staged = grads_of(backbone)
    backbone.zero_grad(set_to_none=True)
    task_loss(reference(backbone, x)).backward()
    expected = grads_of(backbone)
    assert staged.keys() == expected.keys()
    for name, grad in expected.items():
        assert_close(staged[name], grad, msg=name)

    # invariant 1: without the local loss, module 1 gets no gradient at all,
    # although its outputs reach the neck (they arrive detached)
    backbone.zero_grad(set_to_none=True)
    outs = splitter.forward(x)
    task_loss(outs).backward()
    module1 = {id(p) for layer in splitter.module_layers()[0]
               for p in layer.parameters()}
    assert all(p.grad is None for p in backbone.parameters()
               if id(p) in module1)
    assert any(p.grad is not None for p in backbone.parameters()
               if id(p) not in module1)


# ----------------------------------------------------------------------
# with_cp across boundaries
@pytest.mark.parametrize('family,boundary', [
    ('mmseg-swin', 'stages.0.blocks.0'),
    ('convnext', 'stages.2.0'),
    ('mit', 'layers.1.blocks.0'),
    ('mmseg-vit', 'layers.0'),
])
def test_with_cp_same_gradients_and_really_checkpoints(
        family, boundary, monkeypatch):
    import torch.utils.checkpoint as cp
    calls = []
    original = cp.checkpoint

    def counting(function, *args, **kwargs):
        calls.append(args[0].requires_grad)
        kwargs.setdefault('use_reentrant', True)
        return original(function, *args, **kwargs)

    monkeypatch.setattr(cp, 'checkpoint', counting)
    torch.manual_seed(0)
    plain = build_backbone(family)
    with_cp = build_backbone(family, with_cp=True)
    with_cp.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for backbone in (plain, with_cp):
        backbone.eval()
        splitter = splitter_for(backbone)(backbone, boundaries=[boundary])
        outs = splitter.forward(
            x, on_module_end=lambda k, h: local_loss(h).backward())
        task_loss(outs).backward()
        grads.append(grads_of(backbone))
        if backbone is plain:
            assert calls == []
    num_blocks = len(splitter.basic_layers) - 1
    # every block checkpoints, the first one after the boundary included
    assert calls == [True] * num_blocks
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        assert_close(grads[1][name], grad, msg=name)
