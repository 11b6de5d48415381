# DeepLab-V3 ResNet-50-D8, InfoPro K=2, 640x1280 crops, lr 0.015; loss
# weights of the R101 640x1280 config (no published R50 setting).
_base_ = ['./deeplabv3_r101_infopro_k2_640x1280_cityscapes.py']

model = dict(
    architecture=dict(
        pretrained='open-mmlab://resnet50_v1c', backbone=dict(depth=50)),
    split=dict(boundaries=['layer3.3']))
