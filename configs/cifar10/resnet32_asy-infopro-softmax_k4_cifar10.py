# ResNet-32, Asy-InfoPro (Softmax), K=4, CIFAR-10: the InfoPro (Softmax)
# K=4 row (same split, heads and loss weights) trained asynchronously
# (paper §4 "asynchronous training"): local module 1 for the whole schedule,
# then module 2 on the frozen, fully trained module 1 (its outputs recomputed
# every iteration, nothing cached), ..., and last the rest of the network
# with the task loss. The paper reports Asy-InfoPro for ResNet-110 with the
# contrastive head only (Table 2: 7.34 % at K=2, 8.39 % at K=4).
#
# The switch is train_cfg (infopro_mm.AsynchronousTrainLoop, docs/
# distributed.md "Asynchronous InfoPro"); it is iteration based, so the
# row's 160-epoch schedule is restated per module in iterations: 49 per
# epoch (50,000 images in batches of 1024), the same warm-up and cosine
# (converted to iterations), restarted for every module. The run has
# K x 160 epochs of training steps (earlier modules' steps are cheaper: the
# frozen modules run forward only, the later ones not at all).
_base_ = ['./resnet32_infopro-softmax_k4_cifar10.py']

iters_per_epoch = 49
train_cfg = dict(
    _delete_=True,
    type='infopro_mm.AsynchronousTrainLoop',
    max_iters=160 * iters_per_epoch,
    val_interval=iters_per_epoch)
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01 / 0.8,
        end_factor=1.0,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=11),
    dict(
        type='CosineAnnealingLR',
        T_max=160,
        eta_min=0.0,
        by_epoch=True,
        convert_to_iter_based=True,
        begin=0,
        end=160),
]
default_hooks = dict(
    logger=dict(log_metric_by_epoch=False),
    checkpoint=dict(by_epoch=False, interval=160 * iters_per_epoch))
log_processor = dict(by_epoch=False)
