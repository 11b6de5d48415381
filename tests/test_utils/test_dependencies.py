"""Optional downstream packages, the mmcv/mmengine check, the pins.

The environment tests run tools/train.py in a subprocess whose
site-packages is a view of this environment's without mmdet and
mmpretrain (neither importable nor installed as far as pip, importlib and
mmengine can tell), i.e. what `pip install 'infopro_mm[seg]'` leaves.
"""
import glob
import os
import os.path as osp
import subprocess
import sys
import sysconfig

import pytest
from conftest import REPO, demo_data_options
from packaging.requirements import Requirement

from infopro_mm.utils import dependencies

DEMO = 'configs/demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py'
HIDDEN = ('mmdet', 'mmpretrain')


def requirement_files():
    return {
        osp.basename(path): path
        for path in glob.glob(osp.join(REPO, 'requirements', '*.txt'))
    }


def read(path):
    with open(path) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def test_every_pin_lies_in_every_declared_range():
    files = requirement_files()
    pins = {
        Requirement(line).name: next(iter(Requirement(line).specifier))
        for line in read(files.pop('constraints.txt'))
    }
    checked = 0
    for name, path in files.items():
        for line in read(path):
            req = Requirement(line)
            assert req.name in pins, f'{name}: {req.name} has no pin'
            assert req.specifier.contains(pins[req.name].version), \
                f'{name}: {line} excludes the pin {pins[req.name]}'
            checked += 1
    assert checked >= 10


def test_checked_ranges_are_those_of_the_requirement_files():
    lines = read(osp.join(REPO, 'requirements', 'runtime.txt')) + read(
        osp.join(REPO, 'requirements', 'mminstall.txt'))
    declared = {
        Requirement(line).name: Requirement(line).specifier
        for line in lines
    }
    ranges = dependencies.mm_version_ranges()
    assert set(ranges) == {'mmcv', 'mmengine'}
    for name, spec in ranges.items():
        assert spec == declared[name]


@pytest.mark.parametrize('name,found', [('mmcv', '2.2.0'),
                                        ('mmengine', None)])
def test_version_outside_the_range_fails_naming_both(monkeypatch, name,
                                                     found):
    real = dependencies.importlib.metadata.version

    def version(dist):
        if dist != name:
            return real(dist)
        if found is None:
            raise dependencies.importlib.metadata.PackageNotFoundError(dist)
        return found

    monkeypatch.setattr(dependencies.importlib.metadata, 'version', version)
    spec = dependencies.mm_version_ranges()[name]
    with pytest.raises(ImportError) as info:
        dependencies.check_mm_versions()
    what = 'none is installed' if found is None else f'found {found}'
    assert str(info.value).startswith(f'infopro_mm needs {name}{spec}, '
                                      f'{what}: install a version')


@pytest.fixture(scope='module')
def seg_only_site(tmp_path_factory):
    """This environment's site-packages without mmdet and mmpretrain."""
    site = tmp_path_factory.mktemp('seg_only_site')
    source = sysconfig.get_paths()['purelib']
    for entry in os.listdir(source):
        lowered = entry.lower()
        if lowered.startswith(HIDDEN) or 'infopro_mm' in lowered:
            continue  # infopro_mm comes from REPO (PYTHONPATH)
        os.symlink(osp.join(source, entry), site / entry)
    return str(site)


def run_seg_only(site, *args):
    """``python args`` with only ``site`` as site-packages (.pth files
    processed) and the repository on the path."""
    boot = ('import runpy, site, sys; site.addsitedir(sys.argv.pop(1)); '
            'sys.argv.pop(0); runpy.run_path(sys.argv[0], '
            "run_name='__main__')")
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, '-S', '-c', boot, site, *args],
                          cwd=REPO, env=env, capture_output=True, text=True)


def test_seg_only_environment_hides_mmdet_and_mmpretrain(seg_only_site,
                                                         tmp_path):
    probe = tmp_path / 'probe.py'
    probe.write_text(
        'import importlib.metadata as m, importlib.util as u\n'
        'from mmengine.utils import is_installed\n'
        'import infopro_mm\n'
        'from infopro_mm.models import supported_backbones\n'
        "for name in ('mmseg', 'mmdet', 'mmpretrain'):\n"
        "    print(name, u.find_spec(name) is not None, is_installed(name))\n"
        "print('backbones', [c.__module__ for c in supported_backbones()])\n"
        "print('datasets', infopro_mm.datasets.__all__)\n")
    result = run_seg_only(seg_only_site, str(probe))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert 'mmseg True True' in lines
    assert 'mmdet False False' in lines
    assert 'mmpretrain False False' in lines
    assert "backbones ['mmseg.models.backbones.resnet']" in lines
    assert ("datasets ['DigitsSegDataset', 'make_digits_segmentation']"
            in lines)


def test_seg_only_environment_trains_the_demo(seg_only_site, tiny_digits_seg,
                                              tmp_path):
    result = run_seg_only(
        seg_only_site, 'tools/train.py', DEMO, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options', 'train_cfg.max_iters=2',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        *demo_data_options(tiny_digits_seg))
    assert result.returncode == 0, result.stderr[-5000:]
    assert osp.isfile(tmp_path / 'work' / 'iter_2.pth')
    assert 'mIoU' in result.stdout + result.stderr


@pytest.mark.parametrize('config,dist,extra', [
    ('configs/faster-rcnn_r101_fpn_infopro-imagenet_1x_coco.py', 'mmdet',
     'det'),
    ('configs/resnet101_infopro_k2_imagenet.py', 'mmpretrain', 'cls'),
])
def test_config_needing_a_missing_package_fails_with_one_line(
        seg_only_site, tmp_path, config, dist, extra):
    result = run_seg_only(seg_only_site, 'tools/train.py', config,
                          '--work-dir', str(tmp_path / 'work'))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f'error: {config} needs {dist}, which is not installed: '
        f"pip install 'infopro_mm[{extra}]'")
    assert 'Traceback' not in result.stderr
