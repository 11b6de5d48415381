"""Process set-up shared by the command-line tools."""
import logging
import os

import torch
import torch.distributed as dist
from mmengine.logging import print_log

__all__ = [
    'allow_trusted_checkpoints', 'destroy_distributed', 'init_cpu_distributed'
]


def allow_trusted_checkpoints() -> None:
    """Let mmengine 0.10.7 load its own full checkpoints under torch >= 2.6.

    mmengine calls ``torch.load`` without ``weights_only``; torch >= 2.6
    defaults it to True, which rejects the message hub, config and numpy
    objects a training checkpoint carries, so ``--resume`` fails. Setting
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` restores the old default for
    calls that do not pass ``weights_only``. Only use it for checkpoints
    you trust (your own runs, or released files you chose to load).
    """
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')


def init_cpu_distributed(launcher: str, backend: str) -> None:
    """Initialise a gloo process group for CPU-only distributed runs.

    mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device``, which
    fails on a machine without a GPU. When no GPU is visible this sets up the
    group from torchrun's environment itself; mmengine's runner then finds it
    initialised and uses it. Does nothing with a GPU or ``--launcher none``.

    Args:
        launcher (str): The tool's ``--launcher``.
        backend (str): ``env_cfg.dist_cfg.backend`` of the config.
    """
    if launcher != 'pytorch' or torch.cuda.is_available() or \
            dist.is_initialized():
        return
    if backend != 'gloo':
        print_log(
            f'no GPU: using the gloo backend instead of {backend!r}',
            logger='current',
            level=logging.WARNING)
    dist.init_process_group(backend='gloo')


def destroy_distributed() -> None:
    """Tear the process group down at the end of a tool's run.

    mmengine never destroys the group it initialises; a gloo group left to
    the interpreter's exit can abort a rank (``terminate called without an
    active exception``, exit code -6) after a run that finished fine, and
    torchrun then reports the whole job as failed. Does nothing when no
    group is initialised.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
