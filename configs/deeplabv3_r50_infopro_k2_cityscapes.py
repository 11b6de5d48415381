# InfoPro (Softmax), K=2, DeepLab-V3 ResNet-50-D8 on Cityscapes. The cut after
# layer3[3] is what the InfoPro* planner (split policy='balanced') logs for
# this network at 512x1024, batch 2 per GPU; everything else as the
# ResNet-101 config.
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

model = dict(
    architecture=dict(
        pretrained='open-mmlab://resnet50_v1c', backbone=dict(depth=50)),
    split=dict(boundaries=['layer3.3']))
