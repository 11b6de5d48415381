"""The package imports and its components resolve from every downstream
scope, as a config with custom_imports=['infopro_mm'] needs."""
import pytest
from mmengine.registry import DefaultScope
from mmengine.registry import HOOKS as ROOT_HOOKS
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import OPTIM_WRAPPERS as ROOT_OPTIM_WRAPPERS

import infopro_mm
from infopro_mm import registry
from infopro_mm.engine import InfoProHook, InfoProOptimWrapper
from infopro_mm.models import InfoPro, ReconstructionHead


def test_package_imports():
    assert infopro_mm.__version__
    for name in registry.__all__:
        reg = getattr(registry, name)
        assert reg.scope == 'infopro_mm'
        assert reg.parent is not None and reg.parent.scope == 'mmengine'


@pytest.mark.parametrize('scope', ['mmseg', 'mmpretrain', 'mmdet'])
@pytest.mark.parametrize('root,name,cls', [
    (ROOT_MODELS, 'infopro_mm.InfoPro', InfoPro),
    (ROOT_MODELS, 'infopro_mm.ReconstructionHead', ReconstructionHead),
    (ROOT_HOOKS, 'infopro_mm.InfoProHook', InfoProHook),
    (ROOT_OPTIM_WRAPPERS, 'infopro_mm.InfoProOptimWrapper',
     InfoProOptimWrapper),
])
def test_prefixed_names_resolve_from_downstream_scopes(scope, root, name,
                                                       cls):
    with DefaultScope.overwrite_default_scope(scope):
        with root.switch_scope_and_registry(None) as reg:
            assert reg.scope == scope
            assert reg.get(name) is cls


@pytest.mark.parametrize('name', registry.__all__)
def test_every_lazy_import_location_imports(name):
    import importlib
    for location in getattr(registry, name)._locations:
        importlib.import_module(location)


def test_downstream_metric_builds_under_the_infopro_mm_scope():
    from mmengine.registry import METRICS
    with DefaultScope.overwrite_default_scope('infopro_mm'):
        metric = METRICS.build(dict(type='mmseg.IoUMetric'))
    assert type(metric).__name__ == 'IoUMetric'
