from .hooks import *  # noqa: F401,F403
from .checkpoint import CheckpointMismatchError, match_layout
from .optim_wrapper import (InfoProAmpOptimWrapper, InfoProOptimWrapper,
                            LocalBackwardMixin)
from .runner import CheckpointReadError, InfoProRunner, ResumeError
from . import hooks

__all__ = hooks.__all__ + [
    'CheckpointMismatchError', 'CheckpointReadError',
    'InfoProAmpOptimWrapper', 'InfoProOptimWrapper', 'InfoProRunner',
    'LocalBackwardMixin', 'ResumeError', 'match_layout'
]
