"""Splits a ResNet-family backbone into gradient-isolated local modules."""
import importlib
from typing import List, Tuple

from torch import nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import DOWNSTREAM, is_available
from .base_splitter import BaseSplitter, BasicLayer

__all__ = ['ResNetSplitter', 'supported_backbones']


def supported_backbones() -> Tuple[type, ...]:
    """The ResNet base classes of those of mmseg, mmdet and mmpretrain that
    are installed.

    Their subclasses (ResNetV1c, ResNetV1d, ResNeXt, ResNet_CIFAR) share the
    stem + ``res_layers`` structure this splitter relies on.
    """
    return tuple(
        importlib.import_module(f'{package}.models.backbones').ResNet
        for package in DOWNSTREAM if is_available(package))


@MODELS.register_module()
class ResNetSplitter(BaseSplitter):
    """Splits a ResNet-family backbone (see :class:`BaseSplitter`).

    Basic layers are the stem (conv/norm/relu or deep stem, plus the
    max-pool), named ``'stem'``, and every residual block, named
    ``'<res layer>.<block index>'`` (``'layer3.12'``).
    """

    family = ('the ResNet family of mmseg, mmdet and mmpretrain (ResNet, '
              'ResNetV1c, ResNetV1d, ResNeXt, ResNet_CIFAR) and '
              'infopro_mm.CIFARResNet')
    layer_kinds = 'stem + residual blocks'

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        return supported_backbones()

    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        if getattr(backbone, 'deep_stem', False):
            stem = [backbone.stem]
        else:
            stem = [backbone.conv1, backbone.norm1, backbone.relu]
        if hasattr(backbone, 'maxpool'):
            stem.append(backbone.maxpool)
        layers = [BasicLayer('stem', tuple(stem))]
        for stage, layer_name in enumerate(backbone.res_layers):
            blocks = list(getattr(backbone, layer_name))
            for i, block in enumerate(blocks):
                layers.append(
                    BasicLayer(f'{layer_name}.{i}', (block, ),
                               stage if i == len(blocks) - 1 else None))
        return layers
