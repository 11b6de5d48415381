"""Install script of infopro_mm.

The pinned runtime stack (torch, mmcv with compiled ops, mmseg, mmdet,
mmpretrain) is installed by ``make install`` (tools/install_env.sh), because
mmcv must be built against the exact torch in the environment. ``setup.py``
only declares the ranges infopro_mm itself works with.
"""
from setuptools import find_packages, setup


def readme() -> str:
    with open('README.md', encoding='utf-8') as f:
        return f.read()


def version() -> str:
    scope: dict = {}
    with open('infopro_mm/version.py', encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='infopro_mm',
    version=version(),
    description='InfoPro locally supervised training for OpenMMLab 2.x',
    long_description=readme(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.0',
        'mmengine>=0.10.0,<0.11',
        'mmcv>=2.0.0,<2.2.0',
        'mmsegmentation>=1.2.0,<1.3',
        'mmdet>=3.2.0,<3.4',
        'mmpretrain>=1.2.0,<1.3',
    ],
    license='Apache License 2.0',
    license_files=['LICENSE'],
    zip_safe=False,
)
