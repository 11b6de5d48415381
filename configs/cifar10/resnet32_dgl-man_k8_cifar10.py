# ResNet-32, DGL + MAN, K=8, CIFAR-10. Split: InfoPro's at K=8,
# networks/configs.py InfoPro['resnet32'][8] = [1,0] [1,2] [1,4] [2,1] [2,3]
# [3,0] [3,2].
_base_ = './_base_/resnet32_dgl-man_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.0', 'layer1.2', 'layer1.4', 'layer2.1', 'layer2.3', 'layer3.0',
        'layer3.2',
    ]))
