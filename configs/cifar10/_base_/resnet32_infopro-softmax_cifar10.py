# ResNet-32 + InfoPro (Softmax) on CIFAR-10: InfoPro (Contrast) with the
# '1c2f' head ending in FC 10 trained by cross-entropy (the authors'
# `--local_loss_mode cross_entropy`, networks/auxiliary_nets.py). The authors
# published command lines only for Contrast; the Softmax rows reuse those
# lambdas and split points.
_base_ = './resnet32_infopro-contrast_cifar10.py'

model = dict(
    local_heads=dict(
        task=dict(
            _delete_=True, type='infopro_mm.LocalClsHead', arch='small')))
