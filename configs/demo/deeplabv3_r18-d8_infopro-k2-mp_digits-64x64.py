# The demo's InfoPro* K=2 model trained module-parallel: one process per
# local module, features pipelined from rank 0 to rank 1, no gradient
# traffic (docs/distributed.md). Run with 2 processes:
#   tools/dist_train.sh configs/demo/deeplabv3_r18-d8_infopro-k2-mp_digits-64x64.py 2
_base_ = ['./deeplabv3_r18-d8_infopro-k2_digits-64x64.py']

model_wrapper_cfg = dict(
    _delete_=True, type='infopro_mm.InfoProModuleParallel', queue_depth=2)
train_cfg = dict(type='infopro_mm.ModuleParallelTrainLoop')
