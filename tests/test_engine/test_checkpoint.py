"""match_layout: InfoPro and plain checkpoints into either kind of model."""
import pytest
import torch
from tiny_models import SEG_HEADS, tiny_deeplabv3

from infopro_mm.engine import CheckpointMismatchError, match_layout
from infopro_mm.models import InfoPro
from infopro_mm.registry import MODELS

WEIGHTS = dict(recon=1.0, task=1.0)


def infopro(boundary='layer2.0', num_classes=4):
    torch.manual_seed(1)
    return InfoPro(
        architecture=tiny_deeplabv3(num_classes),
        split=dict(boundaries=[boundary]),
        local_heads=SEG_HEADS,
        loss_weights=WEIGHTS)


def plain(num_classes=4):
    torch.manual_seed(2)
    return MODELS.build(tiny_deeplabv3(num_classes))


def load(model, state_dict, **kwargs):
    state_dict, notes = match_layout(model, state_dict, **kwargs)
    result = model.load_state_dict(state_dict, strict=False)
    assert not result.unexpected_keys
    return result, notes


def test_plain_checkpoint_into_infopro(mmseg_scope):
    source, target = plain(), infopro()
    result, notes = load(target, source.state_dict())
    assert all(k.startswith('local_heads.') for k in result.missing_keys)
    assert 'local heads keep their initialisation' in notes[0]
    for key, value in source.state_dict().items():
        assert torch.equal(target.architecture.state_dict()[key], value)


def test_infopro_checkpoint_into_plain(mmseg_scope):
    source, target = infopro(), plain()
    result, notes = load(target, source.state_dict())
    assert not result.missing_keys
    assert 'local-head tensors dropped' in notes[0]
    for key, value in source.plain_state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_same_layout_and_heads_of_another_split(mmseg_scope):
    source = infopro('layer2.0')
    result, notes = load(infopro('layer2.0'), source.state_dict())
    assert not result.missing_keys and not notes
    other = infopro('layer1.0')  # another split: other head shapes
    result, notes = load(other, source.state_dict())
    assert 'do not match this split' in notes[0]
    with pytest.raises(CheckpointMismatchError, match='local heads'):
        match_layout(other, source.state_dict(), require_heads=True)


def test_other_architecture_is_refused_with_the_keys(mmseg_scope):
    with pytest.raises(CheckpointMismatchError) as info:
        match_layout(infopro(num_classes=4), plain(num_classes=7).state_dict())
    message = str(info.value)
    assert 'architecture.decode_head.conv_seg.weight (7, 16, 1, 1) vs ' \
        '(4, 16, 1, 1)' in message
    assert "init_cfg=dict(type='Pretrained'" in message
    state = plain().state_dict()
    state.pop('backbone.stem.0.weight')
    state['neck.extra'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError,
                       match=r'missing in the checkpoint: backbone.stem.0.'
                       r'weight; not in the model: neck.extra'):
        match_layout(plain(), state)
