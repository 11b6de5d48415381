# ResNet-32, greedy SL, K=2, CIFAR-10. Paper Table 2: 10.30 +- 0.20 % test
# error. Split: InfoPro's at K=2, networks/configs.py InfoPro['resnet32'][2] =
# [2,1].
_base_ = './_base_/resnet32_greedy-sl_cifar10.py'
model = dict(split=dict(boundaries=['layer2.1']))
