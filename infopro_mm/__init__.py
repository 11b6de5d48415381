"""infopro_mm: InfoPro locally supervised training for OpenMMLab 2.x.

Importing the package checks the mmcv/mmengine versions, registers its
components in the ``infopro_mm`` scope and lets mmengine resolve
``infopro_mm::`` config names. Parts that need mmseg, mmdet or mmpretrain
are registered where that package is installed (extras ``[seg]``,
``[det]``, ``[cls]``).
"""
from .utils.dependencies import check_mm_versions

check_mm_versions()

from . import apis, datasets, engine, models, registry, utils  # noqa: E402
from .utils import register_config_scope  # noqa: E402
from .version import __version__  # noqa: E402

register_config_scope()

__all__ = [
    '__version__', 'apis', 'datasets', 'engine', 'models', 'registry', 'utils'
]
