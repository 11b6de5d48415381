from .hooks import *  # noqa: F401,F403
from .optim_wrapper import (InfoProAmpOptimWrapper, InfoProOptimWrapper,
                            LocalBackwardMixin)
from . import hooks

__all__ = hooks.__all__ + [
    'InfoProAmpOptimWrapper', 'InfoProOptimWrapper', 'LocalBackwardMixin'
]
