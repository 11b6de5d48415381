from .infopro import InfoPro, MemoryProfile, TimeProfile, is_infopro_config
from .task import dummy_data_samples, task_info

__all__ = [
    'InfoPro', 'MemoryProfile', 'TimeProfile', 'dummy_data_samples',
    'is_infopro_config', 'task_info'
]
