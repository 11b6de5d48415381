from .infopro_hook import InfoProHook, piecewise_linear

__all__ = ['InfoProHook', 'piecewise_linear']
