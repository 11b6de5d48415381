from .memory import SavedTensorTracker
from .setup_env import allow_trusted_checkpoints, init_cpu_distributed

__all__ = [
    'SavedTensorTracker', 'allow_trusted_checkpoints', 'init_cpu_distributed'
]
