"""The decoder w that estimates I(h, x) by reconstructing the input."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import BaseLocalHead, LocalBatch, conv_bn_relu, scaled

__all__ = ['ReconstructionHead']


@MODELS.register_module()
class ReconstructionHead(BaseLocalHead):
    """Reconstructs the input image from a local module's output.

    The loss is the per-pixel binary cross-entropy against the input
    de-normalised to [0, 1] (the paper's R_w(x|h)). The decoder outputs
    logits and the loss applies the sigmoid itself, which is numerically the
    paper's ``Sigmoid`` + BCE and safe under AMP.

    Architectures:

    - ``'large'`` (paper Table 9, ImageNet and Cityscapes): 1x1 conv 128,
      then three stages of (bilinear upsampling, 3x3 conv) with 32, 12 and 3
      channels, reaching 1/4, 1/2 and the full input resolution.
    - ``'small'`` (paper Table 7, CIFAR-size inputs): bilinear upsampling to
      the input resolution, 3x3 conv 12, 3x3 conv 3.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        arch (str): ``'large'`` or ``'small'``. Defaults to ``'large'``.
        width (float): Width multiplier on hidden layers. Defaults to 1.
        image_channels (int): Channels of the reconstructed image.
            Defaults to 3.
        norm_cfg (dict, optional): Norm of the hidden layers (e.g.
            ``dict(type='SyncBN')`` beside a SyncBN architecture). Defaults
            to BatchNorm, the paper's.
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 arch: str = 'large',
                 width: float = 1.0,
                 image_channels: int = 3,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(in_channels, in_stride, width, init_cfg)
        if arch == 'large':
            self.stem = conv_bn_relu(
                in_channels, scaled(128, width), 1, norm_cfg=norm_cfg)
            hidden = [scaled(128, width), scaled(32, width), scaled(12, width)]
            self.stages = nn.ModuleList([
                conv_bn_relu(hidden[0], hidden[1], 3, norm_cfg=norm_cfg),
                conv_bn_relu(hidden[1], hidden[2], 3, norm_cfg=norm_cfg),
            ])
            self.out_conv = nn.Conv2d(hidden[2], image_channels, 3, padding=1)
            self.stage_scales = (4, 2, 1)
        elif arch == 'small':
            self.stem = nn.Identity()
            self.stages = nn.ModuleList(
                [conv_bn_relu(
                    in_channels, scaled(12, width), 3, norm_cfg=norm_cfg)])
            self.out_conv = nn.Conv2d(
                scaled(12, width), image_channels, 3, padding=1)
            self.stage_scales = (1, 1)
        else:
            raise ValueError(
                f"ReconstructionHead arch must be 'large' or 'small', "
                f'got {arch!r}')
        self.arch = arch

    def forward(self, feat: Tensor, size: tuple) -> Tensor:
        """Decode ``feat`` into image logits of spatial ``size``."""
        x = self.stem(feat)
        layers = [*self.stages, self.out_conv]
        for layer, scale in zip(layers, self.stage_scales):
            target = (max(1, size[0] // scale), max(1, size[1] // scale))
            if x.shape[-2:] != target:
                x = F.interpolate(
                    x, size=target, mode='bilinear', align_corners=False)
            x = layer(x)
        return x

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        target = batch.images01
        logits = self.forward(feat, target.shape[-2:])
        return F.binary_cross_entropy_with_logits(
            logits.float(), target.to(feat.device))
