"""Tiny OpenMMLab models and batches for the tests (CPU, seconds)."""
import torch
from mmengine.config import ConfigDict


def tiny_deeplabv3(num_classes: int = 4,
                   dropout: float = 0.0,
                   norm_cfg: dict = dict(type='BN', requires_grad=True)
                   ) -> dict:
    """A DeepLabV3-style mmseg segmentor (ResNetV1c-18-D8, width 16)."""
    return ConfigDict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            size_divisor=32,
            pad_val=0,
            seg_pad_val=255),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=16,
            base_channels=16,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 2, 4),
            strides=(1, 2, 1, 1),
            norm_cfg=norm_cfg,
            contract_dilation=True),
        decode_head=dict(
            type='ASPPHead',
            in_channels=128,
            in_index=3,
            channels=16,
            dilations=(1, 2, 3, 4),
            dropout_ratio=dropout,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        auxiliary_head=dict(
            type='FCNHead',
            in_channels=64,
            in_index=2,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=dropout,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def tiny_resnet_classifier(num_classes: int = 5) -> dict:
    """An mmpretrain ImageClassifier (ResNet_CIFAR-18, width 16)."""
    return dict(
        type='ImageClassifier',
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            mean=[125.307, 122.961, 113.8575],
            std=[51.5865, 50.847, 51.255],
            to_rgb=False),
        backbone=dict(
            type='ResNet_CIFAR', depth=18, base_channels=16,
            out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=num_classes,
            in_channels=128,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))


def seg_batch(num: int = 2, size: int = 64, num_classes: int = 4,
              seed: int = 0) -> dict:
    """A raw mmseg batch (uint8 images, label maps with ignored pixels)."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num):
        inputs.append(
            torch.randint(0, 256, (3, size, size), generator=gen,
                          dtype=torch.uint8))
        label = torch.randint(
            0, num_classes, (1, size, size), generator=gen)
        label[:, :4] = 255
        sample = SegDataSample(
            metainfo=dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size)))
        sample.gt_sem_seg = PixelData(data=label)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def cls_batch(num: int = 4, size: int = 32, num_classes: int = 5,
              seed: int = 0) -> dict:
    """A raw mmpretrain batch."""
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, size, size), generator=gen,
                      dtype=torch.uint8) for _ in range(num)
    ]
    labels = torch.randint(0, num_classes, (num, ), generator=gen)
    samples = [
        DataSample(metainfo=dict(img_shape=(size, size))).set_gt_label(
            int(label)) for label in labels
    ]
    return dict(inputs=inputs, data_samples=samples)


SEG_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='large', width=0.25),
    task=dict(type='infopro_mm.LocalSegHead', width=0.0625, dropout=0.0))
CLS_HEADS = dict(
    recon=dict(type='infopro_mm.ReconstructionHead', arch='small'),
    task=dict(type='infopro_mm.LocalClsHead', arch='small'))

# Tiny backbones of every supported non-ResNet family (splitter tests).

_SWIN = dict(type='SwinTransformer', pretrain_img_size=32, embed_dims=16,
             depths=[2, 1, 1, 1], num_heads=[1, 2, 2, 4], window_size=2,
             out_indices=(0, 1, 2, 3))

#: id -> (scope, backbone config, a boundary inside a stage, splitter type)
FAMILIES = {
    'mmseg-swin': ('mmseg', _SWIN, 'stages.1.blocks.0', 'SwinSplitter'),
    'mmdet-swin': ('mmdet', dict(_SWIN, out_indices=(1, 2, 3)),
                   'stages.0.blocks.1', 'SwinSplitter'),
    'convnext': ('mmpretrain', dict(
        type='ConvNeXt', arch=dict(depths=[1, 1, 2, 1],
                                   channels=[8, 16, 16, 32]),
        out_indices=(0, 1, 2, 3), gap_before_final_norm=False),
        'stages.2.0', 'ConvNeXtSplitter'),
    'convnext-gap': ('mmpretrain', dict(
        type='ConvNeXt', arch=dict(depths=[1, 1, 2, 1],
                                   channels=[8, 16, 16, 32])),
        'stages.1.0', 'ConvNeXtSplitter'),
    'mit': ('mmseg', dict(
        type='MixVisionTransformer', embed_dims=8, num_layers=[1, 2, 1, 1],
        num_heads=[1, 1, 2, 2], out_indices=(0, 1, 2, 3)),
        'layers.1.blocks.0', 'MiTSplitter'),
    'mmseg-vit': ('mmseg', dict(
        type='VisionTransformer', img_size=(32, 32), patch_size=8,
        embed_dims=16, num_layers=3, num_heads=2, mlp_ratio=2,
        out_indices=(0, 2), final_norm=True, out_origin=True),
        'layers.0', 'MMSegViTSplitter'),
    'mmseg-vit-cls': ('mmseg', dict(
        type='VisionTransformer', img_size=(32, 32), patch_size=8,
        embed_dims=16, num_layers=3, num_heads=2, mlp_ratio=2,
        out_indices=(1, 2), output_cls_token=True),
        'layers.1', 'MMSegViTSplitter'),
    'mmpretrain-vit': ('mmpretrain', dict(
        type='VisionTransformer', arch=dict(
            embed_dims=16, num_layers=3, num_heads=2,
            feedforward_channels=32), img_size=32, patch_size=8,
        out_indices=(0, 1, 2), out_type='featmap'),
        'layers.0', 'MMPretrainViTSplitter'),
    'mmpretrain-vit-avg': ('mmpretrain', dict(
        type='VisionTransformer', arch=dict(
            embed_dims=16, num_layers=3, num_heads=2,
            feedforward_channels=32), img_size=32, patch_size=8,
        out_type='avg_featmap'), 'layers.1', 'MMPretrainViTSplitter'),
}


def build_backbone(family: str, **overrides):
    """The tiny backbone of ``family`` (a key of :data:`FAMILIES`)."""
    from mmengine.registry import DefaultScope

    from infopro_mm.registry import MODELS
    scope, cfg, _, _ = FAMILIES[family]
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(dict(cfg, **overrides))


def tiny_family_model(family: str, num_classes: int = 4) -> dict:
    """A tiny downstream model on ``family``'s backbone (a key of
    :data:`FAMILIES`): an mmseg segmentor with a SegFormer head for the
    multi-scale backbones, an mmpretrain classifier for the pooled ones."""
    scope, backbone, _, _ = FAMILIES[family]
    if family in ('convnext-gap', 'mmpretrain-vit-avg'):
        return dict(
            type='ImageClassifier',
            data_preprocessor=tiny_resnet_classifier()['data_preprocessor'],
            backbone=backbone,
            head=dict(
                type='LinearClsHead',
                num_classes=num_classes,
                in_channels=backbone.get('arch', {}).get('embed_dims', 32),
                loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
    if scope == 'mmpretrain':
        backbone = dict(backbone, type='mmpretrain.' + backbone['type'])
    if family == 'mit':
        channels = [8, 8, 16, 16]
    elif 'swin' in family:
        channels = [16, 32, 64, 128]
    elif 'convnext' in family:
        channels = backbone['arch']['channels']
    else:
        channels = [16] * 3
    model = dict(tiny_deeplabv3(num_classes), backbone=backbone)
    model.pop('auxiliary_head')
    model.update(
        decode_head=dict(
            type='SegformerHead',
            in_channels=channels,
            in_index=list(range(len(channels))),
            channels=16,
            dropout_ratio=0.0,
            num_classes=num_classes,
            norm_cfg=dict(type='BN', requires_grad=True),
            align_corners=False,
            loss_decode=dict(
                type='CrossEntropyLoss', use_sigmoid=False,
                loss_weight=1.0)))
    return model
