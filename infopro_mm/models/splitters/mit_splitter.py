"""Splits mmseg's MixVisionTransformer (SegFormer's MiT)."""
from functools import partial
from typing import List, Optional, Tuple, Union

from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import is_available
from .base_splitter import BaseSplitter, BasicLayer, Tokens

__all__ = ['MiTSplitter']


def _run_block(patch_embed: Optional[nn.Module], block: nn.Module,
               norm: Optional[nn.Module],
               x: Union[Tensor, Tokens]) -> Union[Tensor, Tokens]:
    """One MiT block; a stage's patch embedding before its first block, its
    norm and the return to ``(N, C, H, W)`` after its last."""
    if patch_embed is not None:
        seq, hw_shape = patch_embed(x)
    else:
        seq, hw_shape = x.seq, x.hw_shape
    seq = block(seq, hw_shape)
    if norm is None:
        return Tokens(seq, tuple(hw_shape))
    return Tokens(norm(seq), tuple(hw_shape)).feature_map()


@MODELS.register_module()
class MiTSplitter(BaseSplitter):
    """Splits mmseg's ``MixVisionTransformer`` (see :class:`BaseSplitter`).

    Basic layers are the first overlapping patch embedding, named
    ``'patch_embed'``, and every transformer block, named
    ``'layers.<i>.blocks.<j>'``. The patch embedding of a later stage (its
    downsampling) belongs to the stage's first block, the stage's norm to
    its last. Backbone outputs are the stages' ``(N, C, H, W)`` outputs.
    """

    family = "mmseg's MixVisionTransformer (SegFormer)"
    layer_kinds = 'patch embedding + transformer blocks'
    quadratic_in_area = True

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        if not is_available('mmseg'):
            return ()
        from mmseg.models.backbones import MixVisionTransformer
        return (MixVisionTransformer, )

    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        first_embed = backbone.layers[0][0]
        layers = [
            BasicLayer(
                'patch_embed', (first_embed, ),
                run=lambda x: Tokens(*first_embed(x)))
        ]
        for i, (patch_embed, blocks, norm) in enumerate(backbone.layers):
            for j, block in enumerate(blocks):
                embed = patch_embed if i > 0 and j == 0 else None
                last = norm if j == len(blocks) - 1 else None
                modules = tuple(m for m in (embed, block, last)
                                if m is not None)
                layers.append(
                    BasicLayer(
                        f'layers.{i}.blocks.{j}',
                        modules,
                        stage=i if last is not None else None,
                        run=partial(_run_block, embed, block, last)))
        return layers
