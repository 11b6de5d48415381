# ResNet-32, DGL, K=2, CIFAR-10. Paper Table 2: 8.69 +- 0.12 % test error.
# Split: InfoPro's at K=2, networks/configs.py InfoPro['resnet32'][2] = [2,1].
_base_ = './_base_/resnet32_dgl_cifar10.py'
model = dict(split=dict(boundaries=['layer2.1']))
