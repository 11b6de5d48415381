from .arguments import check_arguments, checked_init
from .memory import SavedTensorTracker
from .setup_env import (allow_trusted_checkpoints, destroy_distributed,
                        init_cpu_distributed)

__all__ = [
    'check_arguments', 'checked_init', 'SavedTensorTracker', 'allow_trusted_checkpoints', 'destroy_distributed',
    'init_cpu_distributed'
]
