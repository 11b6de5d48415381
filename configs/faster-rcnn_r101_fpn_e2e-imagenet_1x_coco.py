# Paper Table 15, baseline: Faster-RCNN-FPN ResNet-101 on COCO whose backbone
# starts from an end-to-end ImageNet ResNet-101 (mmdet's own recipe, 1x).
# `backbone_checkpoint` may also be a file converted from an E2E ImageNet run
# (tools/model_converters/infopro_to_mm.py --target mmdet-backbone).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py']

backbone_checkpoint = 'torchvision://resnet101'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
