# InfoPro (Softmax), K=2, UperNet Swin-T on Cityscapes: the recipe of
# upernet_swin-t_e2e_80k_cityscapes.py around an InfoPro split. The cut after
# stages.2.blocks.4 is InfoPro*'s (policy='balanced') at 512x1024 x batch 2,
# measured once and written out (docs/backbones.md). The paper has no Swin
# run: the local heads and weights are its Cityscapes ones (recon 1.5,
# task 1).
_base_ = ['./upernet_swin-t_e2e_80k_cityscapes.py']
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(boundaries=['stages.2.blocks.4']),
    local_heads=dict(
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
