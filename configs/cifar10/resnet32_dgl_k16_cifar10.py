# ResNet-32, DGL, K=16, CIFAR-10. Paper Table 2: 16.21 +- 0.36 % test error.
# Split: InfoPro's at K=16, networks/configs.py InfoPro['resnet32'][16] = [0,0]
# [1,0] [1,1] [1,2] [1,3] [1,4] [2,0] [2,1] [2,2] [2,3] [2,4] [3,0] [3,1] [3,2]
# [3,3].
_base_ = './_base_/resnet32_dgl_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'stem', 'layer1.0', 'layer1.1', 'layer1.2', 'layer1.3', 'layer1.4',
        'layer2.0', 'layer2.1', 'layer2.2', 'layer2.3', 'layer2.4', 'layer3.0',
        'layer3.1', 'layer3.2', 'layer3.3',
    ]))
