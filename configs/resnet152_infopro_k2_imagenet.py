# InfoPro* K=2, ResNet-152 on ImageNet (paper Table 4): cut after layer2[5],
# reconstruction weight 5, task weight 1; schedule as ResNet-101.
_base_ = ['./resnet101_infopro_k2_imagenet.py']

model = dict(
    architecture=dict(backbone=dict(depth=152)),
    split=dict(boundaries=['layer2.5']),
    loss_weights=dict(task=1.0))
