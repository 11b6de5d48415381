from .infopro_ddp import InfoProDDP

__all__ = ['InfoProDDP']
