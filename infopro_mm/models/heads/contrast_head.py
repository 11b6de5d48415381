"""phi + supervised contrastive loss: the paper's InfoPro (Contrast)."""
import math
from typing import List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from torch import Tensor

from infopro_mm.registry import MODELS
from .base_local_head import LocalBatch
from .local_cls_head import LocalClsHead, image_labels

__all__ = ['ContrastHead', 'supervised_contrastive_loss']


def supervised_contrastive_loss(z: Tensor,
                                labels: Tensor,
                                temperature: float = 0.07) -> Tensor:
    """Supervised contrastive loss on L2-normalised embeddings.

    For every anchor i, the mean over its positives p (``y_p = y_i``,
    ``p != i``) of ``-log(exp(z_i.z_p / tau) / sum_{k != i} exp(z_i.z_k /
    tau))``, then the mean over all anchors; an anchor without positives
    contributes 0. This is the averaging of the authors' code (Khosla et
    al.'s ``SupConLoss`` with base temperature = tau). The paper's Eq. 4
    divides the sum over all positive pairs by their count instead, which
    weights anchors of frequent classes more; the two agree on batches with
    the same number of samples per class.

    Args:
        z (Tensor): Embeddings ``(N, D)``, L2-normalised.
        labels (Tensor): Integer labels ``(N,)``.
        temperature (float): tau. Defaults to 0.07.

    Returns:
        Tensor: A scalar loss (0, with a graph, when no anchor has a
        positive).
    """
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = (z @ z.t()) / temperature
    log_prob = logits - torch.logsumexp(
        logits.masked_fill(eye, float('-inf')), dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    if not positive.any():
        return z.sum() * 0.
    per_anchor = log_prob.masked_fill(~positive, 0.).sum(1) / positive.sum(
        1).clamp(min=1)
    return -per_anchor.mean()


@MODELS.register_module()
class ContrastHead(LocalClsHead):
    """Projection head phi trained with the supervised contrastive loss.

    phi has the architecture of :class:`LocalClsHead` (paper: "psi and phi
    share the same architecture except for the last layer") with the last FC
    mapping to a ``proj_dim`` embedding, which is L2-normalised.

    Args:
        in_channels (int): Channels of the module output (inferred).
        in_stride (int): Stride of the module output (inferred).
        arch (str): ``'large'``, ``'small'`` or ``'linear'``; required.
        width (float): Width multiplier on hidden layers. Defaults to 1.
        norm_cfg (dict, optional): Norm of the hidden layers. Defaults to
            BatchNorm.
        proj_dim (int): Embedding size. Defaults to 128 (paper Table 8).
        temperature (float): tau of Eq. 4. Defaults to 0.07.
        collapse_patience (int): Consecutive training batches with
            collapsed embeddings (see :meth:`watch_collapse`) after which a
            warning is logged, once. Defaults to 50.
        init_cfg (dict | list[dict], optional): Initialisation config.
            Defaults to :class:`BaseLocalHead`'s (the authors').
    """

    # Mean resultant length of a batch's unit embeddings above which they
    # count as collapsed (about 0.96 at the authors' initialisation on the
    # digits proxy; spread-out classes are far below it).
    COLLAPSED = 0.99

    def __init__(self,
                 in_channels: int,
                 in_stride: int,
                 arch: Optional[str] = None,
                 width: float = 1.0,
                 norm_cfg: Optional[dict] = None,
                 proj_dim: int = 128,
                 temperature: float = 0.07,
                 collapse_patience: int = 50,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        super().__init__(
            in_channels,
            in_stride,
            num_classes=proj_dim,
            arch=arch,
            width=width,
            norm_cfg=norm_cfg,
            init_cfg=init_cfg)
        self.temperature = temperature
        self.collapse_patience = collapse_patience
        self.collapsed_batches = 0

    def loss(self, feat: Tensor, batch: LocalBatch) -> Tensor:
        self.check_input(feat)
        z = F.normalize(self.forward(feat).float(), dim=1)
        labels = image_labels(batch, z.device)
        if labels.dim() == 2:
            labels = labels.argmax(dim=1)
        if self.training:
            self.watch_collapse(z)
        return supervised_contrastive_loss(z, labels, self.temperature)

    def watch_collapse(self, z: Tensor) -> None:
        """Warn once when the embeddings stay collapsed onto one point.

        When every embedding of a batch is nearly the same unit vector, the
        loss sits at ``log(N - 1)`` whatever the labels and its gradient
        (proportional to the embeddings' spread) nearly vanishes, so the
        local module stops learning from its task term without any error.
        The test is the mean resultant length ``|mean(z)|`` (1 when all are
        equal) of :attr:`collapse_patience` consecutive batches.

        Args:
            z (Tensor): The batch's L2-normalised embeddings ``(N, D)``.
        """
        resultant = z.detach().mean(0).norm().item()
        if resultant < self.COLLAPSED:
            self.collapsed_batches = 0
            return
        self.collapsed_batches += 1
        if self.collapsed_batches == self.collapse_patience:
            MMLogger.get_current_instance().warning(
                f'ContrastHead on {self.in_channels}-channel features: the '
                f'embeddings of {self.collapse_patience} consecutive '
                f'training batches are collapsed (mean resultant length '
                f'{resultant:.4f}; the loss sits at log(N - 1) = '
                f'{math.log(max(2, z.shape[0]) - 1):.2f} and its gradient '
                'nearly vanishes): while they stay so, this local module '
                'learns almost nothing from its task term. Some heads escape '
                'after a few hundred iterations, some never do; '
                'docs/accuracy.md shows where this happened and what to do')
