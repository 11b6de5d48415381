# InfoPro* (Softmax), K=2, ResNet-101 on ImageNet (paper Table 4): batch 1024
# (8 GPUs x 128), lr 0.4, SGD Nesterov 0.9, weight decay 1e-4, cosine over 90
# epochs; cut after layer2[0]; reconstruction weight 5, task weight 0.75.
_base_ = ['mmpretrain::resnet/resnet101_8xb32_in1k.py']
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(boundaries=['layer2.0']),
    local_heads=dict(
        # Table 9 decoder and Table 10 psi
        recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
        task=dict(type='infopro_mm.LocalClsHead', arch='large')),
    loss_weights=dict(recon=5.0, task=0.75))
model_wrapper_cfg = dict(type='infopro_mm.InfoProDDP')
train_dataloader = dict(batch_size=128)
optim_wrapper = dict(
    type='infopro_mm.InfoProOptimWrapper',
    optimizer=dict(
        type='SGD', lr=0.4, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(
    _delete_=True, type='CosineAnnealingLR', T_max=90, by_epoch=True)
train_cfg = dict(max_epochs=90)
auto_scale_lr = dict(base_batch_size=1024)
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
