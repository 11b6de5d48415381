from .arguments import accepted_arguments, check_arguments, checked_init
from .collect_env import collect_env, package_versions
from .dependencies import (DOWNSTREAM, MissingExtraError, check_mm_versions,
                           is_available, load_config, mm_version_ranges)
from .flops import flop_counter
from .memory import (SavedTensorTracker, format_mib, format_size,
                     optimizer_of, optimizer_states, parse_size)
from .setup_env import (allow_trusted_checkpoints, destroy_distributed,
                        init_cpu_distributed, register_all_modules,
                        register_config_scope, retain_host_memory)
from .timing import median_seconds, repeat_seconds

__all__ = [
    'DOWNSTREAM', 'MissingExtraError', 'SavedTensorTracker',
    'accepted_arguments', 'allow_trusted_checkpoints', 'check_arguments',
    'check_mm_versions', 'checked_init', 'collect_env', 'destroy_distributed',
    'flop_counter', 'format_mib', 'format_size', 'init_cpu_distributed',
    'is_available', 'load_config', 'median_seconds', 'mm_version_ranges',
    'optimizer_of', 'optimizer_states', 'package_versions', 'parse_size',
    'register_all_modules', 'register_config_scope', 'repeat_seconds',
    'retain_host_memory'
]
