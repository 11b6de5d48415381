"""Registries of infopro_mm.

Every registry is a child of mmengine's root registry of the same kind, with
scope ``infopro_mm``. A downstream config keeps its own default scope
(``mmseg``, ``mmpretrain`` or ``mmdet``) and names our components with the
scope prefix, e.g. ``type='infopro_mm.InfoPro'``, after
``custom_imports=dict(imports=['infopro_mm'])``.
"""
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

__all__ = [
    'MODELS', 'MODEL_WRAPPERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'HOOKS', 'DATASETS', 'TRANSFORMS', 'METRICS'
]

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
METRICS = Registry(
    'metric',
    parent=MMENGINE_METRICS,
    scope='infopro_mm',
    locations=['infopro_mm.evaluation'])
