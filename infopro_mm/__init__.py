"""infopro_mm: InfoPro locally supervised training for OpenMMLab 2.x.

Importing the package registers its components in the ``infopro_mm`` scope.
"""
from . import datasets, engine, models, registry, utils
from .version import __version__

__all__ = ['__version__', 'datasets', 'engine', 'models', 'registry', 'utils']
