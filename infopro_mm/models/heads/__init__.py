from .aug_local_head import (AugLocalHead, AugLocalSegHead, pyramid_depth,
                             sample_layers)
from .base_local_head import (BaseLocalHead, LocalBatch, build_local_head,
                              local_head_class)
from .contrast_head import ContrastHead, supervised_contrastive_loss
from .local_cls_head import LocalClsHead
from .local_seg_head import LocalSegHead, segmentation_loss
from .momentum_aux_head import MomentumAuxHead, frozen_copy
from .reconstruction_head import ReconstructionHead

__all__ = [
    'AugLocalHead', 'AugLocalSegHead', 'BaseLocalHead', 'LocalBatch',
    'build_local_head', 'ContrastHead', 'LocalClsHead', 'LocalSegHead',
    'MomentumAuxHead', 'ReconstructionHead', 'frozen_copy',
    'local_head_class', 'pyramid_depth', 'sample_layers', 'segmentation_loss',
    'supervised_contrastive_loss'
]
