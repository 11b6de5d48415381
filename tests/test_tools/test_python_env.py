"""tools/python_env.sh: which Python the launch scripts run."""
import os
import shutil
import subprocess
from pathlib import Path

from conftest import REPO as REPO_DIR

REPO = Path(REPO_DIR)


def python_of(root, env=None):
    script = 'source tools/python_env.sh; echo "$PYTHON"; echo "$PYTHONPATH"'
    env = dict(env or {}, PATH=os.environ['PATH'])
    out = subprocess.run(['bash', '-c', script], cwd=root, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.splitlines()


def copy_tools(tmp_path):
    (tmp_path / 'tools').mkdir()
    shutil.copy(REPO / 'tools' / 'python_env.sh', tmp_path / 'tools')
    return tmp_path


def test_project_venv_is_the_default(tmp_path):
    root = copy_tools(tmp_path)
    venv_python = root / '.venv' / 'bin' / 'python'
    venv_python.parent.mkdir(parents=True)
    venv_python.write_text('#!/bin/sh\n')
    venv_python.chmod(0o755)
    python, pythonpath = python_of(root)
    assert python == str(venv_python)
    assert pythonpath == str(root)


def test_path_python_without_a_venv_and_override(tmp_path):
    root = copy_tools(tmp_path)
    assert python_of(root)[0] == 'python'
    python, pythonpath = python_of(
        root, dict(PYTHON='/opt/py/bin/python3', PYTHONPATH='/x'))
    assert python == '/opt/py/bin/python3'
    assert pythonpath == f'{root}:/x'


def test_launch_scripts_use_it():
    for name in ('dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                 'slurm_test.sh'):
        text = (REPO / 'tools' / name).read_text()
        assert 'source "$(dirname "$0")/python_env.sh"' in text, name
        assert 'PYTHON=${PYTHON:-python}' not in text, name
