# DeepLabV3-R101-D8 on Cityscapes, AugLocal, K=2: the DGL K=2 config (cut
# after layer3.12, weight 1, no reconstruction term) with psi replaced by
# AugLocal's auxiliary net (infopro_mm.AugLocalSegHead): depth 3 (the
# authors' ResNet-110 value; they published no ResNet-101 or segmentation
# setting), blocks sampled from layer3.13..layer4.2, fresh blocks with
# SyncBN like the architecture. Not a published setting.
_base_ = ['./deeplabv3_r101_dgl_k2_cityscapes.py']

model = dict(
    local_heads=dict(
        task=dict(
            _delete_=True,
            type='infopro_mm.AugLocalSegHead',
            depth=3,
            norm_cfg=dict(type='SyncBN', requires_grad=True))))
