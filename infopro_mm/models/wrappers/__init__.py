from .bucket_reducer import BucketReducer
from .infopro_ddp import InfoProDDP
from .module_parallel import InfoProModuleParallel, StageOptimizerLayout
from .stage_link import StageLink

__all__ = [
    'BucketReducer', 'InfoProDDP', 'InfoProModuleParallel', 'StageLink',
    'StageOptimizerLayout'
]
