# DeepLabV3-R101-D8 on Cityscapes, AugLocal, K=4: the AugLocal K=2 config
# with InfoPro*'s balanced K=4 split; the planner profiles the AugLocal
# heads as they are built at every candidate cut (their depth and sampled
# layers depend on the cut). Not a published setting.
_base_ = ['./deeplabv3_r101_auglocal_k2_cityscapes.py']

model = dict(
    split=dict(
        _delete_=True,
        num_modules=4,
        policy='balanced',
        input_size=_base_.crop_size,
        batch_size=_base_.train_dataloader.batch_size))
