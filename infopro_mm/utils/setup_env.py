"""Process set-up shared by the command-line tools."""
import ctypes
import logging
import os
import platform

import torch
import torch.distributed as dist
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.logging import print_log

__all__ = [
    'allow_trusted_checkpoints', 'destroy_distributed', 'init_cpu_distributed',
    'register_all_modules', 'register_config_scope', 'retain_host_memory'
]

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def register_config_scope() -> None:
    """Let mmengine resolve ``infopro_mm::`` config names.

    mmengine 0.10.7 resolves ``PACKAGE::FOLDER/FILE.py`` (in ``_base_``,
    ``mmengine.hub.get_config``/``get_model``) only for the packages of its
    table ``mmengine.config.utils.MODULE2PACKAGE`` (import name ->
    distribution), and reads the file from the installed package's
    ``.mim/configs/``. ``import infopro_mm`` adds itself to that table;
    mmengine offers no other way for a package to join it.
    """
    MODULE2PACKAGE.setdefault('infopro_mm', 'infopro_mm')


def register_all_modules() -> None:
    """Import every module of infopro_mm that registers components.

    ``mmengine.hub.get_model('infopro_mm::...')`` calls it. It sets no
    default scope: infopro_mm configs keep their downstream one.
    """
    import infopro_mm.datasets  # noqa: F401
    import infopro_mm.engine  # noqa: F401
    import infopro_mm.models  # noqa: F401


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


def retain_host_memory() -> bool:
    """Let this process keep the host memory it frees, for reuse.

    glibc's malloc gives freed memory back to the OS: every block it served
    by ``mmap`` (those above its mmap threshold, 128 KiB rising to at most
    32 MiB) and the free top of the heap beyond its trim threshold. A CPU
    training step frees its activations after the backward, so the next
    step takes their pages from the OS again, with a page fault and a
    zero-fill per 4 KiB page; how many depends on what the process
    allocated before. On CIFAR ResNet-110 at batch 128 (one thread), after
    ``InfoPro.profile_time`` had run in the process, it made a stage's
    forward + backward 65 % slower and a whole training step 7 % slower
    than with this setting (docs/distributed.md). This sets
    ``M_MMAP_MAX=0`` (large blocks come from the heap too) and
    ``M_TRIM_THRESHOLD=-1`` (the heap is never trimmed): the process keeps
    its peak and reuses what it frees, as CUDA's caching allocator does
    with device memory. ``malloc_trim`` still gives memory back when
    called. It cannot be undone for the rest of the process.

    Returns:
        bool: Whether it was applied (False where the C library is not
        glibc).
    """
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        mallopt = ctypes.CDLL('libc.so.6').mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(
        mallopt(_M_TRIM_THRESHOLD, -1))
