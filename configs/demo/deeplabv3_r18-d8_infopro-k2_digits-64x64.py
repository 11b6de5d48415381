# The demo (make demo): InfoPro* with K=2 balanced local modules on the same
# DeepLabV3 and data as its end-to-end twin.
_base_ = ['./deeplabv3_r18-d8_e2e_digits-64x64.py']

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    split=dict(
        num_modules=2,
        policy='balanced',
        input_size=_base_.crop_size,
        batch_size=_base_.train_dataloader.batch_size),
    local_heads=dict(
        recon=dict(
            type='infopro_mm.ReconstructionHead', arch='large', width=0.5),
        task=dict(type='infopro_mm.LocalSegHead', width=0.25)),
    loss_weights=dict(recon=1.5, task=1.0))
model_wrapper_cfg = dict(type='infopro_mm.InfoProDDP')
optim_wrapper = dict(type='infopro_mm.InfoProOptimWrapper')
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
