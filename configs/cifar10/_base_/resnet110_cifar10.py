# ResNet-110 on CIFAR-10, end-to-end: the ResNet-32 recipe with 18 blocks
# per stage (networks/resnet.py `resnet110`; same hyper-parameters in
# train.py and paper Appendix E).
_base_ = './resnet32_cifar10.py'

model = dict(backbone=dict(depth=110))
