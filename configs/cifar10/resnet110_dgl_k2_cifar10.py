# ResNet-110, DGL, K=2, CIFAR-10. Paper Table 2: 7.70 +- 0.28 % test error.
# Split: InfoPro's at K=2, networks/configs.py InfoPro['resnet110'][2] = [2,8].
_base_ = './_base_/resnet110_dgl_cifar10.py'
model = dict(split=dict(boundaries=['layer2.8']))
