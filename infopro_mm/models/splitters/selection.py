"""Which splitter splits a given backbone."""
from typing import Tuple

from torch import nn

from .base_splitter import BaseSplitter
from .convnext_splitter import ConvNeXtSplitter
from .mit_splitter import MiTSplitter
from .resnet_splitter import ResNetSplitter
from .swin_splitter import SwinSplitter
from .vit_splitter import MMPretrainViTSplitter, MMSegViTSplitter

__all__ = ['SPLITTERS', 'splitter_for']

#: Every family's splitter, in the order they are tried.
SPLITTERS: Tuple[type, ...] = (ResNetSplitter, SwinSplitter, ConvNeXtSplitter,
                               MiTSplitter, MMSegViTSplitter,
                               MMPretrainViTSplitter)


def splitter_for(backbone: nn.Module) -> type:
    """The splitter class whose family ``backbone`` belongs to.

    What ``split=dict(num_modules=K)`` or ``split=dict(boundaries=[...])``
    without a ``type`` uses, so that changing the architecture is enough.

    Args:
        backbone (nn.Module): The architecture's backbone.

    Returns:
        type: A :class:`BaseSplitter` subclass.

    Raises:
        TypeError: No splitter supports the backbone (the message lists the
            supported families).
    """
    for splitter in SPLITTERS:
        if isinstance(backbone, splitter.supported_backbones()):
            return splitter
    families = ''.join(f'\n  - {s.__name__}: {s.family}' for s in SPLITTERS)
    raise TypeError(
        f'InfoPro cannot split a {type(backbone).__name__} backbone; the '
        f'supported backbones are:{families}\n(or give split.type, a '
        f'{BaseSplitter.__name__} subclass for it)')
