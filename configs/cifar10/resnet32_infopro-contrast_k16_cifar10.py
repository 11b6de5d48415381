# ResNet-32, InfoPro (Contrast), K=16, CIFAR-10. Paper Table 2: 12.75 +- 0.11 %
# test error. Split: networks/configs.py InfoPro['resnet32'][16] = [0,0] [1,0]
# [1,1] [1,2] [1,3] [1,4] [2,0] [2,1] [2,2] [2,3] [2,4] [3,0] [3,1] [3,2]
# [3,3]. Lambdas: comand.sh --ixx_1 5 --ixy_1 0.05 --ixx_2 0.2 --ixy_2 0.5.
_base_ = './_base_/resnet32_infopro-contrast_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'stem', 'layer1.0', 'layer1.1', 'layer1.2', 'layer1.3', 'layer1.4',
        'layer2.0', 'layer2.1', 'layer2.2', 'layer2.3', 'layer2.4', 'layer3.0',
        'layer3.1', 'layer3.2', 'layer3.3',
    ]),
    loss_weights=dict(recon=(5, 0.2), task=(0.05, 0.5)))
