# Sourced by the launch scripts: the Python that runs the tools.
# $PYTHON when set, else the project's environment (.venv/bin/python, what
# `make install` creates) when present, else `python` from PATH.
# Also puts the repository on PYTHONPATH.
INFOPRO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$INFOPRO_ROOT/.venv/bin/python" ]; then
    PYTHON="$INFOPRO_ROOT/.venv/bin/python"
  else
    PYTHON=python
  fi
fi
export PYTHONPATH="$INFOPRO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
