# ResNet-110, InfoPro (Softmax), K=8, CIFAR-10. Paper Table 2: 9.40 +- 0.27 %
# test error. Split: networks/configs.py InfoPro['resnet110'][8] = [1,4] [1,11]
# [2,0] [2,7] [2,14] [3,3] [3,10]. Lambdas: comand.sh --ixx_1 5 --ixy_1 0
# --ixx_2 0 --ixy_2 1 (its Contrast line: the authors published none for
# Softmax).
_base_ = './_base_/resnet110_infopro-softmax_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'layer1.4', 'layer1.11', 'layer2.0', 'layer2.7', 'layer2.14',
        'layer3.3', 'layer3.10',
    ]),
    loss_weights=dict(recon=(5, 0), task=(0, 1)))
