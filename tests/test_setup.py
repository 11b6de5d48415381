"""A built package works as an OpenMMLab package: the sdist builds a wheel
(no network) whose ``infopro_mm/.mim/`` holds configs, tools and the model
index; installed into a temporary target, it resolves ``infopro_mm::``
config names in fresh processes, for mmengine's hub, a user's ``_base_``
and the ``.mim/tools`` scripts that ``mim train/test`` run."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO, demo_data_options

PROMISED = 'infopro_mm::_base_/../deeplabv3_r101_infopro_k2_cityscapes.py'
DEMO = 'demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py'
COPY_IGNORE = shutil.ignore_patterns('.git', '.venv', '.cache', 'work_dirs',
                                     'data', 'build', 'dist', '*.egg-info',
                                     '__pycache__')


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (f'{" ".join(map(str, args))}:\n'
                                    f'{result.stdout[-3000:]}\n'
                                    f'{result.stderr[-5000:]}')
    return result


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """sdist of a copy of the checkout, then a wheel built from it."""
    tmp = tmp_path_factory.mktemp('package')
    src = tmp / 'src'
    shutil.copytree(REPO, src, ignore=COPY_IGNORE, symlinks=True)
    run([sys.executable, 'setup.py', '-q', 'sdist', '-d', str(tmp / 'sdist')],
        cwd=src)
    sdist, = glob.glob(str(tmp / 'sdist' / 'infopro_mm-*.tar.gz'))
    run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '--no-index', '-w',
        str(tmp / 'wheels'), sdist
    ])
    path, = glob.glob(str(tmp / 'wheels' / 'infopro_mm-*.whl'))
    return path


@pytest.fixture(scope='module')
def target(wheel, tmp_path_factory):
    """The wheel installed into its own folder (dependencies: this
    environment's)."""
    folder = tmp_path_factory.mktemp('site')
    run([
        sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
        '--no-index', '--target',
        str(folder), wheel
    ])
    return str(folder)


def run_installed(target, args, cwd):
    """``python args`` seeing infopro_mm only from ``target`` (cwd outside
    the checkout, which is not on the path)."""
    env = dict(os.environ, PYTHONPATH=target)
    return run([sys.executable, *args], cwd=cwd, env=env)


def test_wheel_carries_configs_tools_model_index_and_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        metadata = zf.read(
            next(n for n in names if n.endswith('.dist-info/METADATA'))
        ).decode()
    mim = 'infopro_mm/.mim/'
    for path in ('model-index.yml', 'configs/metafile.yml',
                 'configs/deeplabv3_r101_infopro_k2_cityscapes.py',
                 'configs/_base_/digits_on_photos.py', f'configs/{DEMO}',
                 'tools/train.py', 'tools/test.py', 'tools/dist_train.sh',
                 'tools/model_converters/infopro_to_mm.py'):
        assert mim + path in names, path
    assert not any('__pycache__' in name for name in names)
    lines = metadata.splitlines()
    assert 'Requires-Python: >=3.10' in lines
    for extra in ('seg', 'det', 'cls', 'all', 'tests', 'mim'):
        assert f'Provides-Extra: {extra}' in lines
    requires = [line for line in lines if line.startswith('Requires-Dist: ')]
    for dist, extra in (('mmsegmentation', 'seg'), ('mmdet', 'det'),
                        ('mmpretrain', 'cls'), ('mmcv', 'mim')):
        mine = [line for line in requires if line.split()[1].startswith(
            (dist + '<', dist + '>', dist + '='))]
        assert mine and all(f'extra == "{extra}"' in line or
                            'extra == "all"' in line for line in mine), dist
    assert any(line.startswith('Requires-Dist: mmengine') and 'extra' not in
               line for line in requires)
    assert 'License: Apache License 2.0' in lines


def test_installed_wheel_resolves_infopro_mm_configs(target, tmp_path):
    user = tmp_path / 'my_deeplabv3.py'
    user.write_text(f"_base_ = ['{PROMISED}']\n"
                    'model = dict(loss_weights=dict(recon=2.0))\n')
    script = tmp_path / 'resolve.py'
    script.write_text(f'''
import os.path as osp
import infopro_mm
from mmengine.config import Config
from mmengine.hub import get_config, get_model
from mmengine.registry import DefaultScope
from infopro_mm.registry import MODELS
mim = osp.join(osp.dirname(infopro_mm.__file__), '.mim')
assert mim.startswith({target!r}), mim
promised = get_config({PROMISED!r})
assert osp.samefile(promised.filename, osp.join(
    mim, 'configs', 'deeplabv3_r101_infopro_k2_cityscapes.py'))
print('promised', promised.model.type, promised.model.split.boundaries)
user = Config.fromfile({str(user)!r})
print('user', user.model.type, dict(user.model.loss_weights))
user.model.train_cfg = None
with DefaultScope.overwrite_default_scope(user.default_scope):
    model = MODELS.build(user.model)
print('user model', type(model.architecture).__name__)
demo = get_config({'infopro_mm::' + DEMO!r})
assert demo.filename.startswith(mim), demo.filename
model = get_model({'infopro_mm::' + DEMO!r})
print('get_model', type(model).__name__, len(model.local_heads))
''')
    out = run_installed(target, [str(script)], tmp_path).stdout.splitlines()
    assert "promised infopro_mm.InfoPro ['layer3.12']" in out
    assert "user infopro_mm.InfoPro {'recon': 2.0, 'task': 1.0}" in out
    assert 'user model EncoderDecoder' in out
    assert 'get_model InfoPro 1' in out


def test_mim_tools_layout_trains_the_demo(target, tiny_digits_seg, tmp_path):
    # what `mim train infopro_mm CONFIG` runs: the package's
    # .mim/tools/train.py on the config found under the package root
    mim = osp.join(target, 'infopro_mm', '.mim')
    found = [
        osp.join(root, name)
        for root, _, files in os.walk(osp.join(target, 'infopro_mm'))
        for name in files if name == osp.basename(DEMO)
    ]
    assert found == [osp.join(mim, 'configs', DEMO)]
    run_installed(target, [
        osp.join(mim, 'tools', 'train.py'), found[0], '--launcher', 'none',
        '--work-dir', 'work', '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        *demo_data_options(tiny_digits_seg)
    ], tmp_path)
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')


@pytest.mark.skipif(
    importlib.util.find_spec('mim') is None,
    reason='openmim is not installed (pip install openmim)')
def test_mim_train_and_test(target, tiny_digits_seg, tmp_path):
    options = [
        '--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2',
        *demo_data_options(tiny_digits_seg)
    ]
    config = osp.basename(DEMO)  # mim finds it under the package root
    run_installed(target, [
        '-m', 'mim', 'train', 'infopro_mm', config, '--work-dir', 'work',
        *options
    ], tmp_path)
    checkpoint = tmp_path / 'work' / 'iter_2.pth'
    assert checkpoint.is_file()
    out = run_installed(target, [
        '-m', 'mim', 'test', 'infopro_mm', config, '--checkpoint',
        str(checkpoint), '--work-dir', 'test', *options
    ], tmp_path)
    assert 'mIoU' in out.stdout + out.stderr
