# DeepLabV3-R101-D8 on Cityscapes, InfoPro + MAN, K=2: the InfoPro K=2
# config (cut after layer3.12, recon 1.5 / task 1) with both local heads
# behind a momentum auxiliary network (infopro_mm.MomentumAuxHead: an EMA
# copy, momentum 0.995, plus a learnable copy of layer3.13, summed). MAN's
# authors published classification only (CIFAR, STL-10, SVHN, ImageNet);
# this segmentation row is the package's, with InfoPro's weights.
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

model = dict(
    local_heads=dict(
        recon=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=_base_.model.local_heads.recon),
        task=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=_base_.model.local_heads.task)))
