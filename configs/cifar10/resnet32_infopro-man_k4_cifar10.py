# ResNet-32, InfoPro + MAN, K=4, CIFAR-10. Split: InfoPro's at K=4,
# networks/configs.py InfoPro['resnet32'][4] = [1,2] [2,1] [3,0].
# Lambdas: InfoPro's, comand.sh --ixx_1 6 --ixy_1 0 --ixx_2 1 --ixy_2 2.
_base_ = './_base_/resnet32_infopro-man_cifar10.py'
model = dict(
    split=dict(boundaries=['layer1.2', 'layer2.1', 'layer3.0']),
    loss_weights=dict(recon=(6, 1), task=(0, 2)))
