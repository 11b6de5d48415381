"""Process set-up shared by the command-line tools."""
import os

__all__ = ['allow_trusted_checkpoints']


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
