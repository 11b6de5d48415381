# The offline accuracy proxy of tools/analysis/benchmark_accuracy.py: an
# overlay that swaps the data and schedule of a CIFAR-10 row config
# (configs/cifar10/) for the digits-on-photographs set built by
# infopro_mm.datasets.make_digits_classification (paper Appendix A's toy,
# with scikit-learn digit scans on scikit-image photographs, 5000 train /
# 2000 test images, disjoint digit scans). Model, local heads, loss weights
# and split points stay the row's (the authors' settings).
#
# Images are 32x32 (CIFAR's size) with 16x16 digits. At 16x16 images (8x8
# digits), the first version, the first local module already saw whole
# digits (ResNet-32 K=4: stem + 3 blocks, receptive field 15 px) and greedy
# SL matched E2E at K=2 and K=4 (docs/accuracy.md).
#
# Schedule: the paper's CIFAR recipe (SGD, Nesterov, momentum 0.9, weight
# decay 1e-4, linear warm-up then cosine) at batch 32, lr 0.8 * 32 / 1024 =
# 0.025 (the linear scaling rule), for 400 iterations (2.6 epochs), so that
# the CPU grid (39 runs) fits in about 2 hours on 2 cores (7,593 s measured
# on 2026-12-02; at batch 64 and 600 iterations one E2E run took 9.5 min on
# that machine and the grid would have taken about 4 hours). No flip (digits are not symmetric); the
# paper's crop of the image padded by 4.
data_root = 'data/digits_on_photos'
# arguments of make_digits_classification (the set is rebuilt when they
# change)
proxy_data = dict(num_train=5000, num_test=2000, size=32, grid=4)
max_iters = 400
val_interval = 100

# measured on the training images (the dataset holds RGB, 0-255)
data_preprocessor = dict(
    num_classes=10,
    mean=[71.6, 65.9, 63.9],
    std=[40.9, 39.8, 40.5],
    to_rgb=False)
dataset_type = 'infopro_mm.DigitsOnPhotosDataset'
train_dataloader = dict(
    _delete_=True,
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.json',
        pipeline=[
            dict(
                type='RandomCrop',
                crop_size=32,
                padding=4,
                padding_mode='reflect'),
            dict(type='PackInputs'),
        ]))
val_dataloader = dict(
    _delete_=True,
    batch_size=250,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='test.json',
        test_mode=True,
        pipeline=[dict(type='PackInputs')]))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(
        _delete_=True,
        type='SGD',
        lr=0.025,
        momentum=0.9,
        weight_decay=1e-4,
        nesterov=True))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.0125,
        by_epoch=False,
        begin=0,
        end=max_iters // 16),
    dict(
        type='CosineAnnealingLR',
        T_max=max_iters,
        by_epoch=False,
        begin=0,
        end=max_iters),
]
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=val_interval)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(enable=False, base_batch_size=32)
