"""Common interface of the auxiliary heads that train local modules."""
from dataclasses import dataclass
from functools import cached_property
from typing import List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmengine.structures import BaseDataElement
from torch import Tensor

from infopro_mm.utils import accepted_arguments

__all__ = [
    'BaseLocalHead', 'LocalBatch', 'build_local_head', 'check_arch',
    'conv_bn_relu', 'local_head_class', 'scaled'
]


def scaled(channels: int, width: float) -> int:
    """Channels of an auxiliary layer under a width multiplier (Appendix H).

    Args:
        channels (int): The paper's channel count.
        width (float): The multiplier.

    Returns:
        int: ``round(channels * width)``, at least 1.
    """
    return max(1, int(round(channels * width)))


def check_arch(head: str, arch: Optional[str], choices: dict) -> str:
    """Validate the ``arch`` of a head, which has no silent default.

    The paper sizes its auxiliary nets by the input resolution (ImageNet and
    Cityscapes vs CIFAR), which a head cannot see, so configs name them.

    Args:
        head (str): Class name, for the message.
        arch (str, optional): The configured architecture.
        choices (dict): Accepted names -> where they come from.

    Returns:
        str: ``arch``.
    """
    if arch not in choices:
        listed = '; '.join(f'{k!r}: {v}' for k, v in choices.items())
        raise ValueError(f'{head} needs `arch`, one of {listed}; got {arch!r}')
    return arch


def local_head_class(cfg: dict) -> type:
    """The class a local head config builds (registry name or class).

    Args:
        cfg (dict): The head's config.
    """
    from infopro_mm.registry import MODELS
    head_cls = MODELS.get(cfg['type']) if isinstance(cfg['type'],
                                                     str) else cfg['type']
    if head_cls is None:
        raise KeyError(f'local head type {cfg["type"]!r} is not registered')
    return head_cls


def build_local_head(cfg: dict, defaults: dict) -> BaseModule:
    """Build a local head, filling in the ``defaults`` its class accepts.

    Args:
        cfg (dict): The head's config (``type`` and its own arguments).
        defaults (dict): Values inferred by the caller (``in_channels``,
            ``in_stride``, ``num_classes``, the later basic layers, ...);
            the ones the head's ``__init__`` takes and ``cfg`` does not set
            are passed on.

    Returns:
        BaseModule: The built head.
    """
    from infopro_mm.registry import MODELS
    cfg = dict(cfg)
    accepted = accepted_arguments(local_head_class(cfg))
    for key, value in defaults.items():
        if key in accepted:
            cfg.setdefault(key, value)
    return MODELS.build(cfg)


@dataclass
class LocalBatch:
    """What the local heads of one iteration may supervise with.

    Args:
        inputs (Tensor): The batch after the data preprocessor, (N, C, H, W).
        data_samples (list): The downstream data samples (labels).
        mean (Tensor, optional): Normalisation mean of the preprocessor,
            broadcastable to ``inputs``; None when it does not normalise.
        std (Tensor, optional): Normalisation std, as ``mean``.
    """

    inputs: Tensor
    data_samples: Optional[Sequence[BaseDataElement]] = None
    mean: Optional[Tensor] = None
    std: Optional[Tensor] = None

    @cached_property
    def images01(self) -> Tensor:
        """The input images de-normalised to [0, 1] (pixel range 0-255)."""
        x = self.inputs.detach().float()
        if self.mean is not None:
            x = x * self.std.float() + self.mean.float()
        return (x / 255.).clamp_(0., 1.)


class BaseLocalHead(BaseModule):
    """Base class of auxiliary heads attached to a local module's output.

    Subclasses build their layers from the split-inferred ``in_channels`` and
    ``in_stride`` (users never type them) and implement :meth:`loss`.

    Args:
        in_channels (int): Channels of the local module's output.
        in_stride (int): Its stride with respect to the input image.
        width (float): Width multiplier on every hidden layer. Defaults to 1.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to the authors' (their ``InfoProResNet`` and ImageNet
            code): Kaiming-normal (fan-out) on every convolution, norm
            weights 1 and biases 0; linear layers keep PyTorch's default.
    """

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 width: float = 1.0,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(
                    type='Kaiming',
                    layer='Conv2d',
                    mode='fan_out',
                    nonlinearity='relu',
                    distribution='normal'),
                dict(type='Constant', val=1, bias=0, layer='_BatchNorm'),
            ]
        super().__init__(init_cfg=init_cfg)
        if width <= 0:
            raise ValueError(f'width must be positive, got {width}')
        self.in_channels = in_channels
        self.in_stride = in_stride
        self.width = width

    def check_input(self, feat: Tensor) -> None:
        """Raise a clear error when ``feat`` does not fit this head."""
        if feat.dim() != 4 or feat.shape[1] != self.in_channels:
            raise ValueError(
                f'{type(self).__name__} was built for {self.in_channels} '
                f'input channels, got a feature map of shape '
                f'{tuple(feat.shape)}')

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        """Compute this head's (unweighted) loss on a module output.

        Args:
            feat (Tensor): The local module's output, (N, C, h, w).
            batch (LocalBatch): Inputs and labels of the iteration.

        Returns:
            Tensor: A scalar loss.
        """
        raise NotImplementedError


def conv_bn_relu(in_channels: int,
                 out_channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 norm_cfg: Optional[dict] = None,
                 dilation: int = 1) -> torch.nn.Sequential:
    """``kxk conv (no bias) + norm + ReLU``, the paper's unit.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel size (padding keeps the size).
        stride (int): Stride. Defaults to 1.
        norm_cfg (dict, optional): mmcv norm config. Defaults to BatchNorm
            (the paper's).
        dilation (int): Dilation of the conv. Defaults to 1.
    """
    from mmcv.cnn import build_norm_layer
    _, norm = build_norm_layer(norm_cfg or dict(type='BN'), out_channels)
    return torch.nn.Sequential(
        torch.nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=dilation * (kernel_size // 2),
            dilation=dilation,
            bias=False), norm, torch.nn.ReLU(inplace=True))
