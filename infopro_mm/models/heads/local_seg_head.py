"""psi for semantic segmentation: estimates I(h, y) with per-pixel labels."""
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from infopro_mm.registry import MODELS
from .base_local_head import BaseLocalHead, LocalBatch, conv_bn_relu, scaled

__all__ = ['LocalSegHead', 'segmentation_loss']


def segmentation_loss(logits: Tensor, batch: LocalBatch,
                      ignore_index: int = 255) -> Tensor:
    """Per-pixel cross-entropy of low-resolution logits.

    The logits are upsampled (bilinearly, ``align_corners=True`` as in the
    authors' head) to the label size; pixels labelled ``ignore_index`` are
    skipped, and the loss is the sum over valid pixels divided by their
    count, so a crop made only of ignored pixels gives 0, not NaN.

    Args:
        logits (Tensor): Class logits, (N, classes, h, w).
        batch (LocalBatch): Its data samples hold ``gt_sem_seg``.
        ignore_index (int): Label ignored by the loss. Defaults to 255.
    """
    if not batch.data_samples or 'gt_sem_seg' not in batch.data_samples[0]:
        raise ValueError('a local segmentation head needs data samples '
                         'with `gt_sem_seg` (an mmseg segmentor)')
    labels = torch.stack(
        [s.gt_sem_seg.data for s in batch.data_samples]).squeeze(1)
    logits = F.interpolate(
        logits, size=labels.shape[-2:], mode='bilinear', align_corners=True)
    labels = labels.long().to(logits.device)
    loss = F.cross_entropy(
        logits.float(), labels, ignore_index=ignore_index, reduction='sum')
    valid = (labels != ignore_index).sum().clamp(min=1)
    return loss / valid


@MODELS.register_module()
class LocalSegHead(BaseLocalHead):
    """Auxiliary segmentation head psi of a local module.

    ``arch='paper'`` is the paper's Table 11: 3x3 conv 512 + BN + ReLU,
    Dropout(0.1), 1x1 conv to the classes. ``arch='linear'`` is a single 1x1
    conv (greedy supervised learning baseline).

    The logits are upsampled to the label size and scored with
    cross-entropy that skips ``ignore_index`` (:func:`segmentation_loss`).
    Upsampling the logits, rather
    than nearest-downsampling the labels to the feature map, is what the
    downstream mmseg decode heads do: thin structures and the ignore
    boundary survive, and the local task loss measures the same quantity as
    the final task loss. Its extra memory is part of the module's estimate
    in the balanced planner.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        num_classes (int): Number of classes (from the architecture).
        ignore_index (int): Label ignored by the loss (from the
            architecture's decode head). Defaults to 255.
        arch (str): ``'paper'`` or ``'linear'``. Defaults to ``'paper'``.
        width (float): Width multiplier on the hidden conv. Defaults to 1.
        dropout (float): Dropout before the classifier. Defaults to 0.1.
        norm_cfg (dict, optional): Norm of the hidden layers (e.g.
            ``dict(type='SyncBN')`` beside a SyncBN architecture). Defaults
            to BatchNorm, the paper's.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :class:`BaseLocalHead`'s (the authors').
    """

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 num_classes: int,
                 ignore_index: int = 255,
                 arch: str = 'paper',
                 width: float = 1.0,
                 dropout: float = 0.1,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(in_channels, in_stride, width, init_cfg)
        if arch == 'paper':
            hidden = scaled(512, width)
            self.layers = nn.Sequential(
                conv_bn_relu(in_channels, hidden, 3, norm_cfg=norm_cfg),
                nn.Dropout2d(dropout),
                nn.Conv2d(hidden, num_classes, 1))
        elif arch == 'linear':
            self.layers = nn.Conv2d(in_channels, num_classes, 1)
        else:
            raise ValueError(
                f"LocalSegHead arch must be 'paper' or 'linear', got {arch!r}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def forward(self, feat: Tensor) -> Tensor:
        """Class logits at the feature map's resolution."""
        return self.layers(feat)

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        return segmentation_loss(self.forward(feat), batch, self.ignore_index)
