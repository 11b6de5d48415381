# ResNet-110, greedy SL, K=4, CIFAR-10. Paper Table 2: 13.16 +- 0.28 % test
# error. Split: InfoPro's at K=4, networks/configs.py InfoPro['resnet110'][4] =
# [1,11] [2,7] [3,3].
_base_ = './_base_/resnet110_greedy-sl_cifar10.py'
model = dict(split=dict(boundaries=['layer1.11', 'layer2.7', 'layer3.3']))
