from .algorithms import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .splitters import *  # noqa: F401,F403
from .wrappers import *  # noqa: F401,F403
from . import algorithms, heads, splitters, wrappers

__all__ = (algorithms.__all__ + heads.__all__ + splitters.__all__ +
           wrappers.__all__)
