from .consistency_hook import InfoProConsistencyHook
from .infopro_hook import InfoProHook, piecewise_linear

__all__ = ['InfoProConsistencyHook', 'InfoProHook', 'piecewise_linear']
