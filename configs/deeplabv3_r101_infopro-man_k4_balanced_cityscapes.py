# DeepLabV3-R101-D8 on Cityscapes, InfoPro* + MAN, K=4: the balanced K=4
# config with both local heads behind a momentum auxiliary network
# (infopro_mm.MomentumAuxHead). The planner profiles the MAN heads as they
# are built at every candidate cut (copies of the next block included).
# Not a published setting.
_base_ = ['./deeplabv3_r101_infopro_k4_balanced_cityscapes.py']

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
