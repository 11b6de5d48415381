# InfoPro (Softmax), K=2, DeepLab-V3 ResNet-101-D8 on Cityscapes
# (paper Table 5): mmseg's recipe unchanged (512x1024 crops, batch 8 =
# 4 GPUs x 2, SyncBN, 40k iterations, lr 0.01), the backbone cut after
# layer3[12] (the paper's InfoPro* cut, 13 of 23 blocks of layer3 in the first
# module), reconstruction weight 1.5 and task weight 1 (the authors'
# infopro_deeplabv3_r101-d8_512x1024_40k_cityscapes.py).
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py']
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(boundaries=['layer3.12']),
    local_heads=dict(
        # Table 9 decoder and Table 11 psi, with SyncBN as the model
        recon=dict(
            type='infopro_mm.ReconstructionHead',
            arch='large',
            norm_cfg=dict(type='SyncBN', requires_grad=True)),
        task=dict(
            type='infopro_mm.LocalSegHead',
            norm_cfg=dict(type='SyncBN', requires_grad=True))),
    loss_weights=dict(recon=1.5, task=1.0))
model_wrapper_cfg = dict(type='infopro_mm.InfoProDDP')
optim_wrapper = dict(type='infopro_mm.InfoProOptimWrapper')
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
