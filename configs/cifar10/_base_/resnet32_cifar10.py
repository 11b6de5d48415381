# ResNet-32 on CIFAR-10, end-to-end: the recipe of every CIFAR-10 config here
# (paper Appendix E, "Networks and training hyper-parameters"; the authors'
# blackfeather-wang/InfoPro-Pytorch, 'Experiments on CIFAR-SVHN-STL10/').
# - network: He et al. (2016) CIFAR ResNet-32 with the authors' 1x1 conv + BN
#   projection shortcuts (networks/resnet.py: 16/32/64 channels, 5 blocks per
#   stage), global average pooling, linear classifier 64 -> 10;
# - data: mmpretrain's CIFAR10 pipeline (random 32x32 crop of the image
#   padded by 4, horizontal flip), with the authors' reflect padding and
#   normalisation mean (125.3, 123.0, 113.9) / std (63.0, 62.1, 66.7)
#   (train.py; mmpretrain's own std is 51.6/50.8/51.3);
# - optimisation (train.py `training_configurations`): batch 1024 on one
#   GPU, SGD lr 0.8, momentum 0.9, Nesterov, weight decay 1e-4 on every
#   parameter, 160 epochs, `--cos_lr` (every command line of comand.sh).
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['infopro_mm'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='infopro_mm.CIFARResNet', depth=32),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=64,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        init_cfg=None))  # PyTorch's default nn.Linear init, as the authors

data_preprocessor = dict(
    mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7])
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4, padding_mode='reflect'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=1024, dataset=dict(pipeline=train_pipeline))

optim_wrapper = dict(
    optimizer=dict(
        type='SGD', lr=0.8, momentum=0.9, weight_decay=1e-4, nesterov=True))
# The authors' `--cos_lr`, set once per epoch e = 1..160:
#   lr = 0.4 * (1 + cos(pi * e / 160))                        for e > 10,
#   the same times (e - 1) / 10, plus 0.01 * (11 - e) / 10,    for e <= 10.
# Here: the two schedulers below overlap and multiply, per epoch j = e - 1:
#   lr = 0.4 * (1 + cos(pi * j / 160)) * (0.0125 + 0.9875 * min(j, 10) / 10).
# Differences: the ramp from 0.01 is a product, not the authors' blend
# (within 0.002 over epochs 1-11), and the cosine runs one epoch ahead of
# theirs (at most 0.008 higher, mid-training; the last epoch uses lr 8e-5
# where theirs uses 0).
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01 / 0.8,
        end_factor=1.0,
        by_epoch=True,
        begin=0,
        end=11),
    dict(
        type='CosineAnnealingLR',
        T_max=160,
        eta_min=0.0,
        by_epoch=True,
        begin=0,
        end=160),
]
train_cfg = dict(by_epoch=True, max_epochs=160, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
env_cfg = dict(cudnn_benchmark=True)  # train.py sets cudnn.benchmark
