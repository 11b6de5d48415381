# ResNet-110, greedy SL, K=16, CIFAR-10. Paper Table 2: 18.92 +- 1.27 % test
# error. Split: InfoPro's at K=16, networks/configs.py InfoPro['resnet110'][16]
# = [1,1] [1,4] [1,7] [1,10] [1,13] [1,16] [2,1] [2,4] [2,7] [2,11] [2,15]
# [3,1] [3,5] [3,9] [3,13].
_base_ = './_base_/resnet110_greedy-sl_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.1', 'layer1.4', 'layer1.7', 'layer1.10', 'layer1.13',
        'layer1.16', 'layer2.1', 'layer2.4', 'layer2.7', 'layer2.11',
        'layer2.15', 'layer3.1', 'layer3.5', 'layer3.9', 'layer3.13',
    ]))
