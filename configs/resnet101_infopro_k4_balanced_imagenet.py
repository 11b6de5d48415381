# InfoPro*, K=4, ResNet-101 on ImageNet: cuts chosen at start-up from the
# measured training memory at 224x224 and the per-GPU batch (balanced).
_base_ = ['./resnet101_infopro_k2_imagenet.py']

model = dict(
    split=dict(
        _delete_=True,
        num_modules=4,
        policy='balanced',
        input_size=(224, 224),
        batch_size=_base_.train_dataloader.batch_size))
