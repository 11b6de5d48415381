"""psi for classification: estimates I(h, y) with image labels."""
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import (BaseLocalHead, LocalBatch, check_arch,
                              conv_bn_relu, scaled)

__all__ = ['LocalClsHead', 'classification_loss', 'image_labels']


def image_labels(batch: LocalBatch, device: torch.device) -> Tensor:
    """Hard labels ``(N,)`` or soft scores ``(N, C)`` of a classifier batch.

    Soft scores (``gt_score``, set by mmpretrain's Mixup/CutMix batch
    augments) win over hard labels when present.
    """
    samples = batch.data_samples
    if not samples or not ('gt_label' in samples[0]
                           or 'gt_score' in samples[0]):
        raise ValueError('classification local heads need data samples with '
                         '`gt_label` (an mmpretrain classifier)')
    if 'gt_score' in samples[0]:
        return torch.stack([s.gt_score for s in samples]).to(device)
    return torch.cat([s.gt_label.reshape(-1)[:1] for s in samples]).to(device)


def classification_loss(logits: Tensor, batch: LocalBatch) -> Tensor:
    """Cross-entropy of image logits ``(N, C)`` against the batch's labels.

    Soft scores (from batch augments) give the soft-target cross-entropy.
    """
    logits = logits.float()
    target = image_labels(batch, logits.device)
    if target.dim() == 2:  # soft scores from batch augments
        return torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
    return F.cross_entropy(logits, target.long())


@MODELS.register_module()
class LocalClsHead(BaseLocalHead):
    """Auxiliary classification head psi of a local module.

    Architectures:

    - ``'large'`` (paper Table 10, ImageNet): 1x1 conv 128, 3x3 s2 conv 256,
      3x3 s2 conv 512, 1x1 conv 2048 (each + BN + ReLU), global average
      pooling, FC to the classes.
    - ``'small'`` (paper Table 8, CIFAR-size inputs): one 3x3 conv + BN +
      ReLU (stride 2 and 32 channels on stride-1 features, stride 2 and 64
      channels on stride-2 features, stride 1 and 64 channels otherwise),
      global average pooling, FC 128 + ReLU, FC to the classes.
    - ``'linear'``: global average pooling + FC (greedy supervised
      learning baseline).

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        num_classes (int): Output size (classes, from the architecture).
        arch (str): ``'large'``, ``'small'`` or ``'linear'``; required.
        width (float): Width multiplier on hidden layers. Defaults to 1.
        norm_cfg (dict, optional): Norm of the hidden layers (e.g.
            ``dict(type='SyncBN')`` beside a SyncBN architecture). Defaults
            to BatchNorm, the paper's.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :class:`BaseLocalHead`'s (the authors').
    """

    ARCHS = {
        'large': 'paper Table 10, ImageNet-size inputs',
        'small': "paper Table 8 (the authors' '1c2f'), CIFAR-size inputs",
        'linear': "pooling + FC (the authors' '0c1f', greedy SL)"
    }

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 num_classes: int,
                 arch: Optional[str] = None,
                 width: float = 1.0,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, in_stride, width, init_cfg)
        check_arch(type(self).__name__, arch, self.ARCHS)
        if arch == 'large':
            c = [scaled(n, width) for n in (128, 256, 512, 2048)]
            self.trunk = nn.Sequential(
                conv_bn_relu(in_channels, c[0], 1, norm_cfg=norm_cfg),
                conv_bn_relu(c[0], c[1], 3, stride=2, norm_cfg=norm_cfg),
                conv_bn_relu(c[1], c[2], 3, stride=2, norm_cfg=norm_cfg),
                conv_bn_relu(c[2], c[3], 1, norm_cfg=norm_cfg),
                nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = nn.Linear(c[3], num_classes)
        elif arch == 'small':
            channels, stride = ((32, 2) if in_stride <= 1 else
                                (64, 2) if in_stride == 2 else (64, 1))
            c = scaled(channels, width)
            hidden = scaled(128, width)
            self.trunk = nn.Sequential(
                conv_bn_relu(
                    in_channels, c, 3, stride=stride, norm_cfg=norm_cfg),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, hidden),
                nn.ReLU(inplace=True))
            self.fc = nn.Linear(hidden, num_classes)
        elif arch == 'linear':
            self.trunk = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = nn.Linear(in_channels, num_classes)
        self.arch = arch
        self.num_classes = num_classes

    def forward(self, feat: Tensor) -> Tensor:
        """Outputs ``(N, num_classes)``."""
        return self.fc(self.trunk(feat))

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        return classification_loss(self.forward(feat), batch)
