"""Splits a Swin Transformer backbone (mmseg, mmdet)."""
import importlib
from functools import partial
from typing import List, Optional, Tuple

from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import is_available
from .base_splitter import BaseSplitter, BasicLayer, Tokens

__all__ = ['SwinSplitter']


def _run_block(downsample: Optional[nn.Module], block: nn.Module,
               x: Tokens) -> Tokens:
    """Patch merging (at a stage's first block), then one Swin block."""
    seq, hw_shape = x.seq, x.hw_shape
    if downsample is not None:
        seq, hw_shape = downsample(seq, hw_shape)
    return Tokens(block(seq, hw_shape), tuple(hw_shape))


@MODELS.register_module()
class SwinSplitter(BaseSplitter):
    """Splits mmseg's or mmdet's ``SwinTransformer`` (see
    :class:`BaseSplitter`).

    Basic layers are the patch embedding (with the absolute position
    embedding and dropout), named ``'patch_embed'``, and every Swin block,
    named ``'stages.<i>.blocks.<j>'``. A stage's patch merging belongs to
    the first block of the next stage. Backbone outputs are the last block
    of each ``out_indices`` stage through the backbone's ``norm<i>``,
    reshaped to ``(N, C, H, W)``.
    """

    family = "mmseg's and mmdet's SwinTransformer"
    layer_kinds = 'patch embedding + Swin blocks'

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        return tuple(
            importlib.import_module(f'{package}.models.backbones').
            SwinTransformer for package in ('mmseg', 'mmdet')
            if is_available(package))

    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        params = ((backbone.absolute_pos_embed, )
                  if backbone.use_abs_pos_embed else ())
        layers = [
            BasicLayer(
                'patch_embed', (backbone.patch_embed, backbone.drop_after_pos),
                run=self._embed,
                params=params)
        ]
        for i, stage in enumerate(backbone.stages):
            for j, block in enumerate(stage.blocks):
                down = (backbone.stages[i - 1].downsample
                        if i > 0 and j == 0 else None)
                layers.append(
                    BasicLayer(
                        f'stages.{i}.blocks.{j}',
                        (block, ) if down is None else (down, block),
                        stage=i if j == len(stage.blocks) - 1 else None,
                        run=partial(_run_block, down, block)))
        return layers

    def _embed(self, x: Tensor) -> Tokens:
        backbone = self.backbone
        seq, hw_shape = backbone.patch_embed(x)
        if backbone.use_abs_pos_embed:
            seq = seq + backbone.absolute_pos_embed
        return Tokens(backbone.drop_after_pos(seq), tuple(hw_shape))

    def _tap(self, layer: BasicLayer, x: Tokens) -> Tensor:
        stage = layer.stage
        out = getattr(self.backbone, f'norm{stage}')(x.seq)
        return out.view(-1, *x.hw_shape,
                        self.backbone.num_features[stage]).permute(
                            0, 3, 1, 2).contiguous()
