"""The decoder w that estimates I(h, x) by reconstructing the input."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import (BaseLocalHead, LocalBatch, check_arch,
                              conv_bn_relu, scaled)

__all__ = ['ReconstructionHead']


class _UpsampledConv(torch.autograd.Function):
    """``conv2d(bilinear_upsample(x))`` that saves ``x``, not the upsample.

    A plain ``conv2d`` saves its input, here the upsampled map (4x the
    elements of ``x``), for the weight gradient. This function saves ``x``
    (already saved by the ReLU that produced it, so it costs nothing) and
    recomputes the upsampling in backward: no convolution is recomputed, the
    outputs and gradients are the plain composition's, and FLOPs do not
    change. Under autocast the convolution runs in the autocast dtype in
    forward and backward alike.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor],
                size: Tuple[int, int], padding: int) -> Tensor:
        up = F.interpolate(x, size=size, mode='bilinear', align_corners=True)
        out = F.conv2d(up, weight, bias, padding=padding)
        ctx.save_for_backward(x, weight)
        ctx.size, ctx.padding, ctx.has_bias = size, padding, bias is not None
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(ctx.needs_input_grad[0])
            up = F.interpolate(
                leaf, size=ctx.size, mode='bilinear', align_corners=True)
        dtype = grad.dtype
        grad_up, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad, up.detach().to(dtype), weight.to(dtype),
            [weight.shape[0]] if ctx.has_bias else None, [1, 1],
            [ctx.padding] * 2, [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1],
             ctx.has_bias and ctx.needs_input_grad[2]])
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x, = torch.autograd.grad(up, leaf, grad_up.to(up.dtype))
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        return grad_x, grad_w, grad_b, None, None


def upsampled_conv(x: Tensor, conv: nn.Conv2d, size: Tuple[int, int]) -> Tensor:
    """Bilinear upsampling of ``x`` to ``size``, then ``conv``.

    Same result and gradients as ``conv(F.interpolate(x, size))``, with the
    memory of :class:`_UpsampledConv` when gradients are recorded.

    Args:
        x (Tensor): Input, (N, C, h, w).
        conv (nn.Conv2d): A stride-1, undilated, ungrouped conv whose padding
            keeps the size.
        size (tuple[int, int]): Output (H, W).
    """
    if not torch.is_grad_enabled():
        return conv(F.interpolate(
            x, size=size, mode='bilinear', align_corners=True))
    bias = conv.bias
    if bias is not None and torch.is_autocast_enabled(x.device.type):
        bias = bias.to(torch.get_autocast_dtype(x.device.type))
    return _UpsampledConv.apply(x, conv.weight, bias, size, conv.padding[0])


@MODELS.register_module()
class ReconstructionHead(BaseLocalHead):
    """Reconstructs the input image from a local module's output.

    The loss is the per-pixel binary cross-entropy against the input
    de-normalised to [0, 1] (the paper's R_w(x|h)). The decoder outputs
    logits and the loss applies the sigmoid itself, which is numerically the
    paper's ``Sigmoid`` + BCE and safe under AMP. Upsampling is bilinear with
    ``align_corners=True``, as in the authors' decoders.

    Architectures:

    - ``'large'`` (paper Table 9, ImageNet and Cityscapes): 1x1 conv 128,
      then three stages of (bilinear upsampling, 3x3 conv) with 32, 12 and 3
      channels, reaching 1/4, 1/2 and the full input resolution.
    - ``'small'`` (paper Table 7, CIFAR-size inputs): bilinear upsampling to
      the input resolution, 3x3 conv 12, 3x3 conv 3. The authors' first
      conv also has a bias, which the BN right after it cancels; it is
      left out here.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        arch (str): ``'large'`` or ``'small'``; required.
        width (float): Width multiplier on hidden layers. Defaults to 1.
        image_channels (int): Channels of the reconstructed image.
            Defaults to 3.
        norm_cfg (dict, optional): Norm of the hidden layers (e.g.
            ``dict(type='SyncBN')`` beside a SyncBN architecture). Defaults
            to BatchNorm, the paper's.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :class:`BaseLocalHead`'s (the authors').
    """

    ARCHS = {
        'large': 'paper Table 9, ImageNet/Cityscapes-size inputs',
        'small': 'paper Table 7, CIFAR-size (32x32) inputs'
    }

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 arch: Optional[str] = None,
                 width: float = 1.0,
                 image_channels: int = 3,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, in_stride, width, init_cfg)
        check_arch(type(self).__name__, arch, self.ARCHS)
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
        self.arch = arch

    def forward(self, feat: Tensor, size: tuple) -> Tensor:
        """Decode ``feat`` into image logits of spatial ``size``.

        Each upsampling is fused with the convolution after it
        (:func:`upsampled_conv`): the upsampled maps, the largest tensors of
        the decoder, are not kept for backward.
        """
        x = self.stem(feat)
        for layer, scale in zip([*self.stages, self.out_conv],
                                self.stage_scales):
            # a stage is (conv, norm, ReLU); the last layer a bare conv
            conv, *rest = layer if isinstance(layer, nn.Sequential) else [
                layer
            ]
            target = (max(1, size[0] // scale), max(1, size[1] // scale))
            if x.shape[-2:] != target:
                x = upsampled_conv(x, conv, target)
            else:
                x = conv(x)
            for module in rest:
                x = module(x)
        return x

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        target = batch.images01
        logits = self.forward(feat, target.shape[-2:])
        return F.binary_cross_entropy_with_logits(
            logits.float(), target.to(feat.device))
