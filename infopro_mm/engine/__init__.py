from .hooks import *  # noqa: F401,F403
from .checkpoint import CheckpointMismatchError, match_layout
from .loops import AsynchronousTrainLoop, ModuleParallelTrainLoop
from .optim_wrapper import (InfoProAmpOptimWrapper, InfoProOptimWrapper,
                            LocalBackwardMixin)
from .runner import (CheckpointReadError, InfoProRunner, ResumeError,
                     build_runner)
from . import hooks

__all__ = hooks.__all__ + [
    'AsynchronousTrainLoop', 'CheckpointMismatchError', 'CheckpointReadError',
    'InfoProAmpOptimWrapper', 'InfoProOptimWrapper', 'InfoProRunner',
    'LocalBackwardMixin', 'ModuleParallelTrainLoop', 'ResumeError', 'build_runner', 'match_layout'
]
