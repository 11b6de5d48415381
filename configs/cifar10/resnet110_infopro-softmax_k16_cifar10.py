# ResNet-110, InfoPro (Softmax), K=16, CIFAR-10. Paper Table 2: 10.78 +- 0.28 %
# test error. Split: networks/configs.py InfoPro['resnet110'][16] = [1,1] [1,4]
# [1,7] [1,10] [1,13] [1,16] [2,1] [2,4] [2,7] [2,11] [2,15] [3,1] [3,5] [3,9]
# [3,13]. Lambdas: comand.sh --ixx_1 5 --ixy_1 0 --ixx_2 0.5 --ixy_2 1 (its
# Contrast line: the authors published none for Softmax).
_base_ = './_base_/resnet110_infopro-softmax_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.1', 'layer1.4', 'layer1.7', 'layer1.10', 'layer1.13',
        'layer1.16', 'layer2.1', 'layer2.4', 'layer2.7', 'layer2.11',
        'layer2.15', 'layer3.1', 'layer3.5', 'layer3.9', 'layer3.13',
    ]),
    loss_weights=dict(recon=(5, 0.5), task=(0, 1)))
