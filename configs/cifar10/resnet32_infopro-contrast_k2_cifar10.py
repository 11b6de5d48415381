# ResNet-32, InfoPro (Contrast), K=2, CIFAR-10. Paper Table 2: 7.76 +- 0.12 %
# test error. Split: networks/configs.py InfoPro['resnet32'][2] = [2,1].
# Lambdas: comand.sh --ixx_1 5 --ixy_1 1 --ixx_2 0 --ixy_2 0. K=2 has one local
# module: only the first values count.
_base_ = './_base_/resnet32_infopro-contrast_cifar10.py'
model = dict(
    split=dict(boundaries=['layer2.1']),
    loss_weights=dict(recon=(5, 0), task=(1, 0)))
