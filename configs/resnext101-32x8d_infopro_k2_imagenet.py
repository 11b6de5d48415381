# InfoPro* K=2, ResNeXt-101 32x8d on ImageNet (paper Table 4): cut after
# layer2[2], reconstruction weight 5, task weight 0.75; batch 512 (8 x 64),
# lr 0.2 (paper Appendix F).
_base_ = ['./resnet101_infopro_k2_imagenet.py']

model = dict(
    architecture=dict(
        backbone=dict(type='ResNeXt', groups=32, width_per_group=8)),
    split=dict(boundaries=['layer2.2']))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(optimizer=dict(lr=0.2))
auto_scale_lr = dict(base_batch_size=512)
