"""Splits the VisionTransformer backbones of mmseg and mmpretrain."""
from functools import partial
from typing import Any, List, Tuple

import torch
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from infopro_mm.utils.dependencies import is_available
from .base_splitter import BaseSplitter, BasicLayer, Tokens

__all__ = ['MMPretrainViTSplitter', 'MMSegViTSplitter']


def _run_encoder(modules: Tuple[nn.Module, ...], x: Tokens) -> Tokens:
    """An encoder layer (and the final norm after the last one)."""
    seq = x.seq
    for module in modules:
        seq = module(seq)
    return x._replace(seq=seq)


class _ViTSplitter(BaseSplitter):
    """Basic layers of a ViT: the patch embedding (with class token,
    position embedding and pre-norm), named ``'patch_embed'``, and every
    encoder layer, named ``'layers.<i>'``; the final norm belongs to the
    last encoder layer. Local heads see the patch tokens (class token
    dropped) as an ``(N, C, H, W)`` map."""

    layer_kinds = 'patch embedding + encoder layers'
    quadratic_in_area = True

    def _stem_modules(self, backbone: nn.Module) -> Tuple[nn.Module, ...]:
        raise NotImplementedError

    def _embed(self, x: Tensor) -> Tokens:
        raise NotImplementedError

    def _final_norm(self, backbone: nn.Module) -> nn.Module:
        raise NotImplementedError

    def _enumerate_layers(self, backbone: nn.Module) -> List[BasicLayer]:
        params = tuple(
            p for p in (getattr(backbone, 'cls_token', None),
                        backbone.pos_embed) if p is not None)
        layers = [
            BasicLayer(
                'patch_embed',
                self._stem_modules(backbone),
                run=self._embed,
                params=params)
        ]
        last = len(backbone.layers) - 1
        for i, layer in enumerate(backbone.layers):
            modules = (layer, )
            if i == last and backbone.final_norm:
                modules += (self._final_norm(backbone), )
            layers.append(
                BasicLayer(
                    f'layers.{i}',
                    modules,
                    stage=i,
                    run=partial(_run_encoder, modules)))
        return layers


@MODELS.register_module()
class MMSegViTSplitter(_ViTSplitter):
    """Splits mmseg's ``VisionTransformer`` (see :class:`BaseSplitter`).

    Basic layers as for every ViT (``'patch_embed'``, ``'layers.<i>'``);
    outputs (``out_origin``, ``out_indices``, ``output_cls_token``) as the
    backbone forms them.
    """

    family = "mmseg's VisionTransformer"

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        if not is_available('mmseg'):
            return ()
        from mmseg.models.backbones import VisionTransformer
        return (VisionTransformer, )

    def _stem_modules(self, backbone: nn.Module) -> Tuple[nn.Module, ...]:
        modules = (backbone.patch_embed, backbone.drop_after_pos)
        return modules + ((backbone.pre_ln, ) if backbone.pre_norm else ())

    def _final_norm(self, backbone: nn.Module) -> nn.Module:
        return backbone.norm1

    def _embed(self, x: Tensor) -> Tokens:
        backbone = self.backbone
        seq, hw_shape = backbone.patch_embed(x)
        cls_tokens = backbone.cls_token.expand(seq.shape[0], -1, -1)
        seq = torch.cat((cls_tokens, seq), dim=1)
        seq = backbone._pos_embeding(seq, hw_shape, backbone.pos_embed)
        if not backbone.with_cls_token:
            seq = seq[:, 1:]
        if backbone.pre_norm:
            seq = backbone.pre_ln(seq)
        return Tokens(seq, tuple(hw_shape), int(backbone.with_cls_token))

    def _is_tap(self, index: int, layer: BasicLayer) -> bool:
        if index == 0:
            return self.backbone.out_origin
        return layer.stage in self.backbone.out_indices

    def _tap(self, layer: BasicLayer, x: Tokens) -> Any:
        out = x.feature_map().contiguous()
        if self.backbone.output_cls_token:
            return [out, x.seq[:, 0]]
        return out


@MODELS.register_module()
class MMPretrainViTSplitter(_ViTSplitter):
    """Splits mmpretrain's ``VisionTransformer`` (see
    :class:`BaseSplitter`).

    Basic layers as for every ViT (``'patch_embed'``, ``'layers.<i>'``);
    outputs as the backbone's ``out_type`` forms them.
    """

    family = "mmpretrain's VisionTransformer"

    @classmethod
    def supported_backbones(cls) -> Tuple[type, ...]:
        if not is_available('mmpretrain'):
            return ()
        from mmpretrain.models.backbones import VisionTransformer
        return (VisionTransformer, )

    def _stem_modules(self, backbone: nn.Module) -> Tuple[nn.Module, ...]:
        return (backbone.patch_embed, backbone.drop_after_pos,
                backbone.pre_norm)

    def _final_norm(self, backbone: nn.Module) -> nn.Module:
        return backbone.ln1

    def _embed(self, x: Tensor) -> Tokens:
        from mmpretrain.models.utils import resize_pos_embed
        backbone = self.backbone
        seq, hw_shape = backbone.patch_embed(x)
        if backbone.cls_token is not None:
            cls_token = backbone.cls_token.expand(seq.shape[0], -1, -1)
            seq = torch.cat((cls_token, seq), dim=1)
        seq = seq + resize_pos_embed(
            backbone.pos_embed,
            backbone.patch_resolution,
            hw_shape,
            mode=backbone.interpolate_mode,
            num_extra_tokens=backbone.num_extra_tokens)
        seq = backbone.pre_norm(backbone.drop_after_pos(seq))
        return Tokens(seq, tuple(hw_shape), backbone.num_extra_tokens)

    def _tap(self, layer: BasicLayer, x: Tokens) -> Any:
        return self.backbone._format_output(x.seq, x.hw_shape)
