# ResNet-110, greedy SL, K=2, CIFAR-10. Paper Table 2: 8.21 +- 0.24 % test
# error. Split: InfoPro's at K=2, networks/configs.py InfoPro['resnet110'][2] =
# [2,8].
_base_ = './_base_/resnet110_greedy-sl_cifar10.py'
model = dict(split=dict(boundaries=['layer2.8']))
