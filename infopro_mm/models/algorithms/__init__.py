from .infopro import InfoPro, MemoryProfile
from .task import dummy_data_samples, task_info

__all__ = ['InfoPro', 'MemoryProfile', 'dummy_data_samples', 'task_info']
