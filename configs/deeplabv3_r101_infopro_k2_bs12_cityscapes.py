# As deeplabv3_r101_infopro_k2_cityscapes.py with batch 12 (4 GPUs x 3), the
# memory InfoPro frees spent on a larger batch; lr 0.015 (paper Appendix F).
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

train_dataloader = dict(batch_size=3)
optim_wrapper = dict(optimizer=dict(lr=0.015))
