from .planner import module_costs, plan_balanced_cuts
from .resnet_splitter import (BasicLayer, ResNetSplitter, supported_backbones,
                              uniform_cuts)

__all__ = [
    'BasicLayer', 'ResNetSplitter', 'module_costs', 'plan_balanced_cuts',
    'supported_backbones', 'uniform_cuts'
]
