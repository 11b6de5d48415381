# InfoPro (Softmax), K=2, ConvNeXt-T on ImageNet: mmpretrain's recipe
# unchanged (batch 4096 = 32 GPUs x 128, AdamW 4e-3, 300 epochs, Mixup /
# CutMix, EMA) around an InfoPro split. The cut after stages.1.0 is
# InfoPro*'s (policy='balanced') at 224x224 x batch 128, measured once and
# written out (docs/backbones.md). The paper has no ConvNeXt run: the local
# heads and weights are its ResNet-101 ImageNet K=2 ones (recon 5,
# task 0.75).
_base_ = ['mmpretrain::convnext/convnext-tiny_32xb128_in1k.py']
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(boundaries=['stages.1.0']),
    local_heads=dict(
        # Table 9 decoder and Table 10 psi
        recon=dict(type='infopro_mm.ReconstructionHead', arch='large'),
        task=dict(type='infopro_mm.LocalClsHead', arch='large')),
    loss_weights=dict(recon=5.0, task=0.75))
model_wrapper_cfg = dict(type='infopro_mm.InfoProDDP')
optim_wrapper = dict(type='infopro_mm.InfoProOptimWrapper')
custom_hooks = [*_base_.custom_hooks, dict(type='infopro_mm.InfoProHook')]
