"""Misspelt config keys name the closest valid one."""
import pytest

from infopro_mm import registry
from infopro_mm.utils import check_arguments, checked_init


def registered_classes():
    for name in registry.__all__:
        reg = getattr(registry, name)
        reg.import_from_location()
        yield from reg.module_dict.items()


@pytest.mark.parametrize('name,cls', list(registered_classes()))
def test_every_registered_class_suggests_the_closest_key(name, cls):
    with pytest.raises(TypeError, match=r'unknown argument\(s\) `init_cfgg`'):
        cls(init_cfgg=None)


def test_the_splitter_typo_of_the_issue():
    from infopro_mm.models import ResNetSplitter
    with pytest.raises(TypeError, match='`polcy` \\(did you mean `policy`'):
        ResNetSplitter(backbone=None, num_modules=2, polcy='balanced')


def test_kwargs_chain_and_open_kwargs():

    class Base:

        def __init__(self, depth, width=1):
            self.depth, self.width = depth, width

    @checked_init
    class Child(Base):

        def __init__(self, stages=3, **kwargs):
            super().__init__(**kwargs)
            self.stages = stages

    assert Child(depth=2, width=3, stages=1).width == 3
    with pytest.raises(TypeError, match='`wdith` \\(did you mean `width`'):
        Child(depth=2, wdith=3)

    @checked_init
    class Open:

        def __init__(self, **kwargs):
            self.kwargs = kwargs

    assert Open(anything=1).kwargs == dict(anything=1)


def test_check_arguments_of_a_function_and_a_class():

    def loop(max_iters, val_interval=1):
        pass

    check_arguments('train_cfg', loop, ['max_iters'])
    with pytest.raises(TypeError, match='train_cfg got unknown argument'
                       r'\(s\) `max_iter` \(did you mean `max_iters`'):
        check_arguments('train_cfg', loop, ['max_iter'])
