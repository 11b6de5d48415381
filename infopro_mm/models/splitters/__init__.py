from .planner import (MemoryBudgetError, module_costs, plan_balanced_cuts,
                      plan_within_budget)
from .resnet_splitter import (BasicLayer, ResNetSplitter, supported_backbones,
                              uniform_cuts)

__all__ = [
    'BasicLayer', 'MemoryBudgetError', 'ResNetSplitter', 'module_costs',
    'plan_balanced_cuts', 'plan_within_budget', 'supported_backbones',
    'uniform_cuts'
]
