from .infopro import InfoPro, MemoryProfile, is_infopro_config
from .task import dummy_data_samples, task_info

__all__ = [
    'InfoPro', 'MemoryProfile', 'dummy_data_samples', 'is_infopro_config',
    'task_info'
]
