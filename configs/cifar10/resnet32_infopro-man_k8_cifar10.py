# ResNet-32, InfoPro + MAN, K=8, CIFAR-10. Split: InfoPro's at K=8,
# networks/configs.py InfoPro['resnet32'][8] = [1,0] [1,2] [1,4] [2,1] [2,3]
# [3,0] [3,2].
# Lambdas: InfoPro's, comand.sh --ixx_1 5 --ixy_1 0 --ixx_2 0 --ixy_2 2.
_base_ = './_base_/resnet32_infopro-man_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.0', 'layer1.2', 'layer1.4', 'layer2.1', 'layer2.3', 'layer3.0',
        'layer3.2',
    ]),
    loss_weights=dict(recon=(5, 0), task=(0, 2)))
