# ResNet-32, InfoPro (Contrast), K=4, CIFAR-10. Paper Table 2: 8.58 +- 0.17 %
# test error. Split: networks/configs.py InfoPro['resnet32'][4] = [1,2] [2,1]
# [3,0]. Lambdas: comand.sh --ixx_1 6 --ixy_1 0 --ixx_2 1 --ixy_2 2.
_base_ = './_base_/resnet32_infopro-contrast_cifar10.py'
model = dict(
    split=dict(boundaries=['layer1.2', 'layer2.1', 'layer3.0']),
    loss_weights=dict(recon=(6, 1), task=(0, 2)))
