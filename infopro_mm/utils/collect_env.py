"""The environment a bug report needs."""
import importlib
from collections import OrderedDict

from mmengine.utils.dl_utils import collect_env as collect_base_env

__all__ = ['collect_env', 'package_versions']

PACKAGES = ('mmcv', 'mmseg', 'mmdet', 'mmpretrain', 'infopro_mm')


def package_versions() -> 'OrderedDict[str, str]':
    """Versions of the OpenMMLab packages and infopro_mm (or why not)."""
    versions = OrderedDict()
    for name in PACKAGES:
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError as exc:
            versions[name] = f'not importable ({exc})'
    try:
        importlib.import_module('mmcv.ops')
        versions['mmcv ops'] = 'compiled'
    except ImportError as exc:
        versions['mmcv ops'] = f'not importable ({exc})'
    return versions


def collect_env() -> 'OrderedDict[str, str]':
    """mmengine's environment (Python, torch, CUDA, compilers, ...) plus
    :func:`package_versions`."""
    env = collect_base_env()
    env.update(package_versions())
    return env
