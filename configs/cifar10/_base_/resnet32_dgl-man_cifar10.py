# ResNet-32 + DGL + MAN on CIFAR-10: DGL's '1c2f' classifier (weight 1 on
# every local module) behind a momentum auxiliary network
# (infopro_mm.MomentumAuxHead: EMA copy + learnable copy of the next
# module's first block). Rows use InfoPro's split points at the same K.
_base_ = './resnet32_dgl_cifar10.py'

model = dict(
    local_heads=dict(
        task=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=dict(type='infopro_mm.LocalClsHead', arch='small'))))
