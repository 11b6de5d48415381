# As deeplabv3_r101_infopro_k2_cityscapes.py with batch 12 (4 GPUs x 3), the
# memory InfoPro frees spent on a larger batch; lr 0.015 (paper Appendix F);
# reconstruction weight 1, task weight 0.1 (the authors'
# infopro_deeplabv3_r101-d8_512x1024_bs12_40k_cityscapes.py).
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

model = dict(loss_weights=dict(recon=1.0, task=0.1))
train_dataloader = dict(batch_size=3)
optim_wrapper = dict(optimizer=dict(lr=0.015))
