from .bucket_reducer import BucketReducer
from .infopro_ddp import InfoProDDP

__all__ = ['BucketReducer', 'InfoProDDP']
