# ResNet-32, InfoPro (Softmax), K=16, CIFAR-10. Paper Table 2: 14.23 +- 0.42 %
# test error. Split: networks/configs.py InfoPro['resnet32'][16] = [0,0] [1,0]
# [1,1] [1,2] [1,3] [1,4] [2,0] [2,1] [2,2] [2,3] [2,4] [3,0] [3,1] [3,2]
# [3,3]. Lambdas: comand.sh --ixx_1 5 --ixy_1 0.05 --ixx_2 0.2 --ixy_2 0.5 (its
# Contrast line: the authors published none for Softmax).
_base_ = './_base_/resnet32_infopro-softmax_cifar10.py'
model = dict(
    split=dict(boundaries=[
        'stem', 'layer1.0', 'layer1.1', 'layer1.2', 'layer1.3', 'layer1.4',
        'layer2.0', 'layer2.1', 'layer2.2', 'layer2.3', 'layer2.4', 'layer3.0',
        'layer3.1', 'layer3.2', 'layer3.3',
    ]),
    loss_weights=dict(recon=(5, 0.2), task=(0.05, 0.5)))
