from .base_splitter import (BaseSplitter, BasicLayer, Tokens, feature_map,
                            uniform_cuts)
from .convnext_splitter import ConvNeXtSplitter
from .mit_splitter import MiTSplitter
from .planner import (MemoryBudgetError, module_costs, plan_balanced_cuts,
                      plan_within_budget)
from .resnet_splitter import ResNetSplitter, supported_backbones
from .selection import SPLITTERS, splitter_for
from .swin_splitter import SwinSplitter
from .vit_splitter import MMPretrainViTSplitter, MMSegViTSplitter

__all__ = [
    'BaseSplitter', 'BasicLayer', 'ConvNeXtSplitter', 'MMPretrainViTSplitter',
    'MMSegViTSplitter', 'MemoryBudgetError', 'MiTSplitter', 'ResNetSplitter',
    'SPLITTERS', 'SwinSplitter', 'Tokens', 'feature_map', 'module_costs',
    'plan_balanced_cuts', 'plan_within_budget', 'splitter_for',
    'supported_backbones', 'uniform_cuts'
]
