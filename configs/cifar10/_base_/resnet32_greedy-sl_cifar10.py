# ResNet-32 + greedy supervised learning on CIFAR-10: each local module
# trained by a linear classifier on pooled features (the authors'
# `--aux_net_config 0c1f` with cross-entropy), weight 1, no reconstruction.
# Rows use InfoPro's split points at the same K.
_base_ = './resnet32_dgl_cifar10.py'

model = dict(local_heads=dict(task=dict(arch='linear')))
