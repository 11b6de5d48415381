# ResNet-110, InfoPro (Contrast), K=4, CIFAR-10. Paper Table 2: 7.30 +- 0.14 %
# test error. Split: networks/configs.py InfoPro['resnet110'][4] = [1,11] [2,7]
# [3,3]. Lambdas: comand.sh --ixx_1 1 --ixy_1 0 --ixx_2 0 --ixy_2 1.
_base_ = './_base_/resnet110_infopro-contrast_cifar10.py'
model = dict(
    split=dict(boundaries=['layer1.11', 'layer2.7', 'layer3.3']),
    loss_weights=dict(recon=(1, 0), task=(0, 1)))
