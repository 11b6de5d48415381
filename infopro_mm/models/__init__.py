from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .splitters import *  # noqa: F401,F403
from .wrappers import *  # noqa: F401,F403
from . import algorithms, backbones, heads, splitters, wrappers

__all__ = (algorithms.__all__ + backbones.__all__ + heads.__all__ +
           splitters.__all__ + wrappers.__all__)
