# Paper Table 15: Faster-RCNN-FPN ResNet-101 on COCO whose backbone starts
# from an InfoPro* (K=2) ImageNet ResNet-101. Convert the checkpoint first
# (the authors' released torchvision-style file, or our own InfoPro run):
#   python tools/model_converters/infopro_to_mm.py SRC \
#       checkpoints/infopro_r101_k2_imagenet_mmdet-backbone.pth \
#       --target mmdet-backbone \
#       --config configs/faster-rcnn_r101_fpn_infopro-imagenet_1x_coco.py
# then train, or point elsewhere with
#   --cfg-options model.backbone.init_cfg.checkpoint=PATH
# The training log says `load model from: PATH`; a warning that the model
# and loaded state dict "do not match exactly" means the file does not fit.
_base_ = ['./faster-rcnn_r101_fpn_e2e-imagenet_1x_coco.py']

backbone_checkpoint = 'checkpoints/infopro_r101_k2_imagenet_mmdet-backbone.pth'
model = dict(
    backbone=dict(
        init_cfg=dict(type='Pretrained', checkpoint=backbone_checkpoint)))
