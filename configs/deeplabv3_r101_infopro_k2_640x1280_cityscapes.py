# As deeplabv3_r101_infopro_k2_cityscapes.py with 640x1280 crops, the memory
# InfoPro frees spent on larger crops; lr 0.015 (paper Appendix F);
# reconstruction weight 2, task weight 1 (the authors'
# infopro_deeplabv3_r101-d8_640x1280_40k_cityscapes.py).
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

crop_size = (640, 1280)
data_preprocessor = dict(size=crop_size)
model = dict(
    architecture=dict(data_preprocessor=data_preprocessor),
    loss_weights=dict(recon=2.0, task=1.0))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(optimizer=dict(lr=0.015))
