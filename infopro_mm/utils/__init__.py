from .memory import SavedTensorTracker
from .setup_env import (allow_trusted_checkpoints, destroy_distributed,
                        init_cpu_distributed)

__all__ = [
    'SavedTensorTracker', 'allow_trusted_checkpoints', 'destroy_distributed',
    'init_cpu_distributed'
]
