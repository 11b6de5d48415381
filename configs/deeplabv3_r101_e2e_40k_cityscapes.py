# The end-to-end baseline of paper Table 5: DeepLab-V3 ResNet-101-D8 on
# Cityscapes trained by back-propagation, mmseg's recipe unchanged (512x1024
# crops, batch 8 = 4 GPUs x 2, SyncBN, 40k iterations, lr 0.01), the
# authors' released "E2E, 40k, bs=8, 512x1024" checkpoint (model-index.yml).
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py']
