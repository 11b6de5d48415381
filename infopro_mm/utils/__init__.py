from .arguments import check_arguments, checked_init
from .collect_env import collect_env, package_versions
from .memory import SavedTensorTracker
from .setup_env import (allow_trusted_checkpoints, destroy_distributed,
                        init_cpu_distributed)

__all__ = [
    'SavedTensorTracker', 'allow_trusted_checkpoints', 'check_arguments',
    'checked_init', 'collect_env', 'destroy_distributed',
    'init_cpu_distributed', 'package_versions'
]
