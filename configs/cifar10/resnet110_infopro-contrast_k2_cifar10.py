# ResNet-110, InfoPro (Contrast), K=2, CIFAR-10. Paper Table 2: 6.42 +- 0.08 %
# test error. Split: networks/configs.py InfoPro['resnet110'][2] = [2,8].
# Lambdas: comand.sh --ixx_1 5 --ixy_1 0.5 --ixx_2 0 --ixy_2 0. K=2 has one
# local module: only the first values count.
_base_ = './_base_/resnet110_infopro-contrast_cifar10.py'
model = dict(
    split=dict(boundaries=['layer2.8']),
    loss_weights=dict(recon=(5, 0), task=(0.5, 0)))
