"""Registries of infopro_mm.

Every registry is a child of mmengine's root registry of the same kind, with
scope ``infopro_mm``. Every class registered here names the closest valid
key when a config misspells one of its arguments (:func:`checked_init`). A
downstream config keeps its own default scope (``mmseg``, ``mmpretrain`` or
``mmdet``; the package defines no metric, so metrics are theirs) and names
our components with the scope prefix, e.g. ``type='infopro_mm.InfoPro'``,
after ``custom_imports=dict(imports=['infopro_mm'])``.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry as MMEngineRegistry

from infopro_mm.utils.arguments import checked_init

__all__ = [
    'MODELS', 'MODEL_WRAPPERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'HOOKS', 'DATASETS', 'TRANSFORMS',
    'RUNNERS', 'LOOPS'
]


class Registry(MMEngineRegistry):
    """mmengine's Registry whose classes check their config keys."""

    def _register_module(self, module, module_name=None, force=False):
        if isinstance(module, type):
            checked_init(module)
        super()._register_module(module, module_name, force)


MODELS = Registry(
    'model',
    parent=MMENGINE_MODELS,
    scope='infopro_mm',
    locations=['infopro_mm.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper',
    parent=MMENGINE_MODEL_WRAPPERS,
    scope='infopro_mm',
    locations=['infopro_mm.models'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper',
    parent=MMENGINE_OPTIM_WRAPPERS,
    scope='infopro_mm',
    locations=['infopro_mm.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    scope='infopro_mm',
    locations=['infopro_mm.engine'])
HOOKS = Registry(
    'hook',
    parent=MMENGINE_HOOKS,
    scope='infopro_mm',
    locations=['infopro_mm.engine'])
DATASETS = Registry(
    'dataset',
    parent=MMENGINE_DATASETS,
    scope='infopro_mm',
    locations=['infopro_mm.datasets'])
TRANSFORMS = Registry(
    'transform',
    parent=MMENGINE_TRANSFORMS,
    scope='infopro_mm',
    locations=['infopro_mm.datasets'])
RUNNERS = Registry(
    'runner',
    parent=MMENGINE_RUNNERS,
    scope='infopro_mm',
    locations=['infopro_mm.engine'])
LOOPS = Registry(
    'loop',
    parent=MMENGINE_LOOPS,
    scope='infopro_mm',
    locations=['infopro_mm.engine'])
