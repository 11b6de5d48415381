"""Optional downstream packages and the mmcv/mmengine version range.

mmseg, mmdet and mmpretrain are extras of infopro_mm (``[seg]``, ``[det]``,
``[cls]``): the package imports each only where it is installed, and a
config that needs a missing one fails naming the extra to install.
"""
import importlib.metadata
import importlib.util
import os.path as osp
from typing import Dict, List

from mmengine.config import Config
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

__all__ = [
    'DOWNSTREAM', 'MissingExtraError', 'check_mm_versions', 'is_available',
    'load_config', 'mm_version_ranges'
]

#: import name -> (distribution, the infopro_mm extra that installs it)
DOWNSTREAM = {
    'mmseg': ('mmsegmentation', 'seg'),
    'mmdet': ('mmdet', 'det'),
    'mmpretrain': ('mmpretrain', 'cls'),
}
#: packages whose version range is checked when infopro_mm is imported
CHECKED = ('mmcv', 'mmengine')
_CHECKOUT_REQUIREMENTS = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
    'requirements')


class MissingExtraError(ModuleNotFoundError):
    """A config needs a downstream package that is not installed.

    Args:
        module (str): Its import name, a key of :data:`DOWNSTREAM`.
        needed_by (str): What needs it, e.g. the config file.
    """

    def __init__(self, module: str, needed_by: str) -> None:
        dist, extra = DOWNSTREAM[module]
        super().__init__(
            f'{needed_by} needs {dist}, which is not installed: '
            f"pip install 'infopro_mm[{extra}]'",
            name=module)


def is_available(module: str) -> bool:
    """Whether ``module`` (a top-level package) can be imported."""
    return importlib.util.find_spec(module) is not None


def load_config(filename: str) -> Config:
    """``Config.fromfile``, naming the extra to install when the config (or
    one of its bases) needs mmseg, mmdet or mmpretrain and it is missing.

    Args:
        filename (str): The config file.

    Raises:
        MissingExtraError: One line: what is missing and the extra.
    """
    try:
        return Config.fromfile(filename)
    except ModuleNotFoundError as exc:
        # mmengine: "<dist> is not installed, ..." for a `<scope>::` base;
        # an import of the package (custom_imports) names it in exc.name
        for module, (dist, _) in DOWNSTREAM.items():
            named = (exc.name or '').split('.')[0] == module or str(
                exc).startswith(f'{dist} is not installed')
            if named and not is_available(module):
                raise MissingExtraError(module, filename) from None
        raise


def _requirement_lines() -> List[str]:
    """infopro_mm's requirements: the installed distribution's, else (an
    uninstalled checkout on PYTHONPATH) those of ``requirements/``."""
    try:
        return importlib.metadata.requires('infopro_mm') or []
    except importlib.metadata.PackageNotFoundError:
        lines = []
        for name in ('runtime.txt', 'mminstall.txt'):
            with open(osp.join(_CHECKOUT_REQUIREMENTS, name)) as f:
                lines += [line.split('#')[0].strip() for line in f]
        return [line for line in lines if line]


def mm_version_ranges() -> Dict[str, SpecifierSet]:
    """The mmcv and mmengine version ranges infopro_mm declares."""
    ranges = {}
    for line in _requirement_lines():
        req = Requirement(line)
        if req.name in CHECKED:
            ranges[req.name] = req.specifier
    return ranges


def check_mm_versions() -> None:
    """Fail with a clear message when mmcv or mmengine is outside the range
    infopro_mm declares (``requirements/``), as at ``import infopro_mm``.

    Raises:
        ImportError: Naming the package, the found and the needed version.
    """
    for name, spec in mm_version_ranges().items():
        try:
            found = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found is not None and spec.contains(found, prereleases=True):
            continue
        what = 'none is installed' if found is None else f'found {found}'
        raise ImportError(
            f'infopro_mm needs {name}{spec}, {what}: install a version in '
            f'that range (docs/install.md: `make install`, or `mim install '
            f'"{name}{spec}"`)')
