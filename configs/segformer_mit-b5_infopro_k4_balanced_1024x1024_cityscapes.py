# InfoPro*, K=4, SegFormer MiT-B5 on Cityscapes: the cuts are chosen at
# start-up by measuring every basic layer's training memory at the crop size
# (balanced policy; MiT's attention maps are extrapolated quadratically);
# the chosen cuts and per-module estimates are logged.
_base_ = ['./segformer_mit-b5_infopro_k2_1024x1024_cityscapes.py']

model = dict(
    split=dict(
        _delete_=True,
        num_modules=4,
        policy='balanced',
        input_size=_base_.crop_size,
        batch_size=_base_.train_dataloader.batch_size))
