# ResNet-32, AugLocal, K=4, CIFAR-10. Split: InfoPro's at K=4,
# networks/configs.py InfoPro['resnet32'][4] = [1,2] [2,1] [3,0].
_base_ = './_base_/resnet32_auglocal_cifar10.py'
model = dict(
    split=dict(boundaries=['layer1.2', 'layer2.1', 'layer3.0']))
