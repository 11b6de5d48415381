from infopro_mm.utils.dependencies import is_available

__all__ = []
if is_available('mmpretrain'):  # an mmpretrain backbone (extra [cls])
    from .cifar_resnet import CIFARResNet
    __all__ += ['CIFARResNet']
