# InfoPro (Softmax), K=2, SegFormer MiT-B5 on Cityscapes: mmseg's recipe
# unchanged (1024x1024 crops, batch 8 = 8 GPUs x 1, 160k iterations, AdamW
# 6e-5) around an InfoPro split. The cut after layers.2.blocks.11 is
# InfoPro*'s (policy='balanced') at 1024x1024 x batch 1, measured once and
# written out (docs/backbones.md). The paper has no SegFormer run: the local
# heads and weights are its Cityscapes ones (recon 1.5, task 1).
_base_ = ['mmseg::segformer/segformer_mit-b5_8xb1-160k_cityscapes-1024x1024.py']
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(boundaries=['layers.2.blocks.11']),
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
# mmseg's 10x lr for 'head' would match the local heads too: keep it for the
# decode head only
optim_wrapper = dict(
    type='infopro_mm.InfoProOptimWrapper',
    paramwise_cfg=dict(
        custom_keys=dict(
            _delete_=True,
            pos_block=dict(decay_mult=0.),
            norm=dict(decay_mult=0.),
            decode_head=dict(lr_mult=10.))))
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
