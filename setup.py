"""Install script of infopro_mm.

Requirements come from ``requirements/`` (one file per extra; exact tested
versions in ``requirements/constraints.txt``, used by ``make install``).
mmcv is the ``[mim]`` extra, as in mmseg/mmdet/mmpretrain: its compiled ops
must be built against the installed torch (``tools/install_env.sh`` or
``mim install``). A wheel or sdist carries ``configs/``, ``tools/`` and
``model-index.yml`` in ``infopro_mm/.mim/``, where mmengine's
``infopro_mm::`` config names and ``mim train/test`` look for them.
"""
import os
import os.path as osp
import shutil
from typing import List

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = osp.dirname(osp.abspath(__file__))
#: what infopro_mm/.mim/ holds in a built package (mmseg's layout)
MIM_FILES = ('configs', 'tools', 'model-index.yml')
#: extra -> requirements file
EXTRAS = dict(seg='seg', det='det', cls='cls', mim='mminstall', tests='tests')


def readme() -> str:
    with open(osp.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def version() -> str:
    scope: dict = {}
    with open(osp.join(ROOT, 'infopro_mm/version.py'), encoding='utf-8') as f:
        exec(f.read(), scope)
    return scope['__version__']


def requirements(name: str) -> List[str]:
    """The requirement lines of ``requirements/<name>.txt``."""
    with open(osp.join(ROOT, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


class BuildPyWithMim(build_py):
    """build_py that also copies configs, tools and the model index into
    ``infopro_mm/.mim/`` of the build (not of the source tree). Editable
    installs run from the checkout and keep using its paths."""

    def run(self) -> None:
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        mim = osp.join(self.build_lib, 'infopro_mm', '.mim')
        if osp.isdir(mim):
            shutil.rmtree(mim)  # nothing stale from an earlier build
        os.makedirs(mim)
        ignore = shutil.ignore_patterns('__pycache__', '*.pyc')
        for name in MIM_FILES:
            src = osp.join(ROOT, name)
            if osp.isdir(src):
                shutil.copytree(src, osp.join(mim, name), ignore=ignore)
            else:
                shutil.copy2(src, mim)


extras = {extra: requirements(name) for extra, name in EXTRAS.items()}
extras['all'] = extras['seg'] + extras['det'] + extras['cls']

setup(
    name='infopro_mm',
    version=version(),
    description='InfoPro locally supervised training for OpenMMLab 2.x',
    long_description=readme(),
    long_description_content_type='text/markdown',
    keywords='locally supervised learning, InfoPro, OpenMMLab, '
    'memory-efficient training, segmentation, classification, detection',
    author='infopro_mm contributors',
    project_urls={'Paper': 'https://openreview.net/forum?id=fAbkE6ant2'},
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    cmdclass=dict(build_py=BuildPyWithMim),
    python_requires='>=3.10',
    install_requires=requirements('runtime'),
    extras_require=extras,
    classifiers=[
        'Development Status :: 4 - Beta',
        'License :: OSI Approved :: Apache Software License',
        'Operating System :: OS Independent',
        'Programming Language :: Python :: 3',
        'Programming Language :: Python :: 3.10',
        'Programming Language :: Python :: 3.11',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    license='Apache License 2.0',
    license_files=['LICENSE'],
    zip_safe=False,
)
