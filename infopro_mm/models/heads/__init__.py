from .base_local_head import BaseLocalHead, LocalBatch
from .contrast_head import ContrastHead, supervised_contrastive_loss
from .local_cls_head import LocalClsHead
from .local_seg_head import LocalSegHead
from .reconstruction_head import ReconstructionHead

__all__ = [
    'BaseLocalHead', 'LocalBatch', 'ContrastHead', 'LocalClsHead',
    'LocalSegHead', 'ReconstructionHead', 'supervised_contrastive_loss'
]
