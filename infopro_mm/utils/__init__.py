from .memory import SavedTensorTracker
from .setup_env import allow_trusted_checkpoints

__all__ = ['SavedTensorTracker', 'allow_trusted_checkpoints']
