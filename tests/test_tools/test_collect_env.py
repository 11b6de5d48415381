"""tools/misc/collect_env.py prints what a bug report needs."""
from conftest import run_tool


def test_collect_env_lists_the_packages():
    out = run_tool('tools/misc/collect_env.py').stdout
    for name in ('PyTorch', 'MMEngine', 'mmcv', 'mmseg', 'mmdet',
                 'mmpretrain', 'infopro_mm', 'mmcv ops'):
        assert f'\n{name}: ' in f'\n{out}', name
