# ResNet-110 + InfoPro (Contrast) on CIFAR-10: the ResNet-32 setup of
# ./resnet32_infopro-contrast_cifar10.py on ResNet-110 (18 blocks per
# stage, networks/resnet.py `resnet110`).
_base_ = './resnet32_infopro-contrast_cifar10.py'

model = dict(architecture=dict(backbone=dict(depth=110)))
