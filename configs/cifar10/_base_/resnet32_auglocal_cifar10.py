# ResNet-32 + AugLocal (Ma et al., "Scaling Supervised Local Learning with
# Augmented Auxiliary Networks", ICLR 2024) on CIFAR-10: each local module
# is trained by cross-entropy (weight 1) through an auxiliary net made of
# blocks sampled uniformly from the later layers, depth 2 for the first
# module falling towards the output (pyramid coefficient 0.5), pooling and
# a linear classifier (infopro_mm.AugLocalHead documents the rules). The
# authors' ChenxiangMA/AugLocal README trains ResNet-32 with
# `--aux_net_depth 2 --pyramid --pyramid_coeff 0.5`, 400 epochs and one
# layer per module (K = 16 - 2); the rows here keep InfoPro's split points
# and the 160-epoch recipe of the other rows, so they compare at equal K
# and schedule.
_base_ = './resnet32_dgl_cifar10.py'

model = dict(
    local_heads=dict(
        task=dict(_delete_=True, type='infopro_mm.AugLocalHead', depth=2)))
