# ResNet-110, greedy SL, K=8, CIFAR-10. Paper Table 2: 15.61 +- 0.57 % test
# error. Split: InfoPro's at K=8, networks/configs.py InfoPro['resnet110'][8] =
# [1,4] [1,11] [2,0] [2,7] [2,14] [3,3] [3,10].
_base_ = './_base_/resnet110_greedy-sl_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.4', 'layer1.11', 'layer2.0', 'layer2.7', 'layer2.14',
        'layer3.3', 'layer3.10',
    ]))
