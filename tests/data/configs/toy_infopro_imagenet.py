# Toy InfoPro config for the tool tests: K=2 (cut after layer2.0) on an
# mmpretrain ResNet_CIFAR-18 of width 16, 32x32 crops of the tiny ImageNet
# that tools/misc/make_tiny_datasets.py writes (4 classes), iteration based,
# a checkpoint and a validation every 2 iterations. The tests point the
# dataloaders at the data with --cfg-options.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    'mmpretrain::_base_/default_runtime.py'
]
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

data_preprocessor = dict(num_classes=4)
model = dict(
    type='infopro_mm.InfoPro',
    architecture=dict(
        type='ImageClassifier',
        backbone=dict(
            type='ResNet_CIFAR', depth=18, base_channels=16,
            out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=4,
            in_channels=128,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, ))),
    split=dict(boundaries=['layer2.0']),
    local_heads=dict(
        recon=dict(type='infopro_mm.ReconstructionHead', arch='small'),
        task=dict(type='infopro_mm.LocalClsHead', arch='small')),
    loss_weights=dict(recon=1.0, task=1.0))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=32),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=36, edge='short'),
    dict(type='CenterCrop', crop_size=32),
    dict(type='PackInputs'),
]
loader = dict(batch_size=4, num_workers=0, persistent_workers=False)
train_dataloader = dict(**loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(**loader, dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

train_cfg = dict(by_epoch=False, max_iters=4, val_interval=2)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(
    type='infopro_mm.InfoProOptimWrapper',
    optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1),
    checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
