"""Fixtures shared by the tests."""
import os.path as osp
import socket
import subprocess
import sys

import pytest
from mmengine.registry import DefaultScope

import infopro_mm  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _scope(name: str):
    with DefaultScope.overwrite_default_scope(name):
        yield


@pytest.fixture
def mmseg_scope():
    """Build configs as an mmseg config does (default scope mmseg)."""
    yield from _scope('mmseg')


@pytest.fixture
def mmpretrain_scope():
    """Build configs as an mmpretrain config does."""
    yield from _scope('mmpretrain')


@pytest.fixture
def mmdet_scope():
    """Build configs as an mmdet config does."""
    yield from _scope('mmdet')


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """Tiny Cityscapes / ImageNet / COCO in their real on-disk formats."""
    root = tmp_path_factory.mktemp('tiny')
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools/misc/make_tiny_datasets.py'),
        str(root)
    ], check=True)
    return root


@pytest.fixture(scope='session')
def tiny_digits_seg(tmp_path_factory):
    """The demo's dataset, 16 training and 4 validation images."""
    from infopro_mm.datasets import make_digits_segmentation
    return make_digits_segmentation(
        str(tmp_path_factory.mktemp('digits_seg')), num_train=16, num_val=4)


def demo_data_options(root: str) -> list:
    """--cfg-options pointing a demo config at ``root``."""
    return [
        f'{loader}.dataset.data_root={root}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


def run_tool(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run a script of tools/ as a user would; fail with its output."""
    result = subprocess.run([sys.executable, *args],
                            cwd=cwd or REPO,
                            capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise AssertionError(f'{" ".join(args)} failed:\n'
                             f'{result.stdout[-5000:]}\n{result.stderr[-5000:]}')
    return result


def free_port() -> int:
    """A TCP port on localhost that nothing listens on now."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
