"""Splits mmpretrain's ConvNeXt backbone (also used by mmseg and mmdet)."""
from typing import List, Tuple

from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import is_available
from .base_splitter import BaseSplitter, BasicLayer

__all__ = ['ConvNeXtSplitter']


@MODELS.register_module()
class ConvNeXtSplitter(BaseSplitter):
    """Splits mmpretrain's ``ConvNeXt`` (see :class:`BaseSplitter`).

    Basic layers are the stem (``downsample_layers.0``), named ``'stem'``,
    and every ConvNeXt block, named ``'stages.<i>.<j>'``. A stage's
    downsampling layer belongs to its first block. Backbone outputs are the
    last block of each ``out_indices`` stage through the backbone's
    ``norm<i>`` (after global pooling when ``gap_before_final_norm``).
    """

    family = "mmpretrain's ConvNeXt (mmseg/mmdet: type='mmpretrain.ConvNeXt')"
    layer_kinds = 'stem + ConvNeXt blocks'

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        if not is_available('mmpretrain'):
            return ()
        from mmpretrain.models.backbones import ConvNeXt
        return (ConvNeXt, )

    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        layers = [BasicLayer('stem', (backbone.downsample_layers[0], ))]
        for i, stage in enumerate(backbone.stages):
            for j, block in enumerate(stage):
                modules = ((backbone.downsample_layers[i], block)
                           if i > 0 and j == 0 else (block, ))
                layers.append(
                    BasicLayer(f'stages.{i}.{j}', modules,
                               i if j == len(stage) - 1 else None))
        return layers

    def _tap(self, layer: BasicLayer, x: Tensor) -> Tensor:
        norm = getattr(self.backbone, f'norm{layer.stage}')
        if self.backbone.gap_before_final_norm:
            return norm(x.mean([-2, -1], keepdim=True)).flatten(1)
        return norm(x)
