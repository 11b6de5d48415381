# DeepLabV3-R101-D8 on Cityscapes, DGL + MAN, K=2: the DGL K=2 config (the
# Table 11 psi alone, weight 1, cut after layer3.12) with psi behind a
# momentum auxiliary network (infopro_mm.MomentumAuxHead). Not a published
# setting (MAN's authors published classification only).
_base_ = ['./deeplabv3_r101_dgl_k2_cityscapes.py']

model = dict(
    local_heads=dict(
        task=dict(
            _delete_=True,
            type='infopro_mm.MomentumAuxHead',
            head=_base_.model.local_heads.task)))
