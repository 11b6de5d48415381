"""Every config in configs/ trains for a few iterations through
tools/train.py on tiny data in the real formats, then validates with the
real metric. The overrides only point at the tiny data and shrink the
iterations, crops, batch and the balanced planner's input size."""
import glob
import os.path as osp
import re

import pytest
from conftest import REPO, run_tool

CITYSCAPES = [
    'deeplabv3_r101_infopro_k2_cityscapes.py',
    'deeplabv3_r101_infopro_k2_bs12_cityscapes.py',
    'deeplabv3_r101_infopro_k2_640x1280_cityscapes.py',
    'deeplabv3_r50_infopro_k2_cityscapes.py',
    'deeplabv3_r50_infopro_k2_640x1280_cityscapes.py',
    'deeplabv3_r101_dgl_k2_cityscapes.py',
    'deeplabv3_r101_infopro_k4_balanced_cityscapes.py',
    # InfoPro's successor MAN as local heads
    'deeplabv3_r101_infopro-man_k2_cityscapes.py',
    'deeplabv3_r101_dgl-man_k2_cityscapes.py',
    'deeplabv3_r101_infopro-man_k4_balanced_cityscapes.py',
    # ... and AugLocal
    'deeplabv3_r101_auglocal_k2_cityscapes.py',
    'deeplabv3_r101_auglocal_k4_balanced_cityscapes.py',
]
# the authors' released end-to-end baselines (model-index.yml)
CITYSCAPES_E2E = [
    'deeplabv3_r101_e2e_40k_cityscapes.py',
    'deeplabv3_r101_e2e_60k_cityscapes.py',
]
# transformer / ConvNeXt backbones (docs/backbones.md); their pretrained
# backbone checkpoints are switched off like the ResNets' `pretrained`
CITYSCAPES_BEYOND_RESNET = [
    'segformer_mit-b5_infopro_k2_1024x1024_cityscapes.py',
    'segformer_mit-b5_infopro_k4_balanced_1024x1024_cityscapes.py',
    'upernet_swin-t_infopro_k2_cityscapes.py',
]
CITYSCAPES_E2E_BEYOND_RESNET = ['upernet_swin-t_e2e_80k_cityscapes.py']
IMAGENET_BEYOND_RESNET = ['convnext-t_infopro_k2_imagenet.py']
IMAGENET = [
    'resnet101_infopro_k2_imagenet.py',
    'resnet152_infopro_k2_imagenet.py',
    'resnext101-32x8d_infopro_k2_imagenet.py',
    'resnet101_infopro_k4_balanced_imagenet.py',
]
COCO = ['faster-rcnn_r101_fpn_e2e-imagenet_1x_coco.py']
DEMO = [
    'demo/deeplabv3_r18-d8_infopro-k2_digits-64x64.py',
    'demo/deeplabv3_r18-d8_e2e_digits-64x64.py',
]
CIFAR10_METHODS = ('greedy-sl', 'dgl', 'infopro-softmax', 'infopro-contrast')
# InfoPro's successors as local heads (MAN, AugLocal), at InfoPro's splits
CIFAR10_SUCCESSORS = ('infopro-man', 'dgl-man', 'auglocal')
CIFAR10 = [f'cifar10/resnet{depth}_e2e_cifar10.py' for depth in (32, 110)] + [
    f'cifar10/resnet{depth}_{method}_k{k}_cifar10.py' for depth in (32, 110)
    for method in CIFAR10_METHODS for k in (2, 4, 8, 16)
] + [
    f'cifar10/resnet32_{method}_k{k}_cifar10.py'
    for method in CIFAR10_SUCCESSORS for k in (4, 8)
]
# Asy-InfoPro (AsynchronousTrainLoop): the InfoPro (Softmax) rows trained
# one local module after the other
CIFAR10_ASYNCHRONOUS = [
    f'cifar10/resnet32_asy-infopro-softmax_k{k}_cifar10.py' for k in (2, 4, 8)
]
# The authors' CIFAR-10 recipes (blackfeather-wang/InfoPro-Pytorch,
# 'Experiments on CIFAR-SVHN-STL10/'): split points of networks/configs.py
# ([stage, block] ending each local module, stage 0 = the stem) and the
# lambdas (ixx_1, ixy_1, ixx_2, ixy_2) of comand.sh's InfoPro lines.
CIFAR10_AUTHORS = {
    (32, 2): ([[2, 1]], (5, 1, 0, 0)),
    (32, 4): ([[1, 2], [2, 1], [3, 0]], (6, 0, 1, 2)),
    (32, 8): ([[1, 0], [1, 2], [1, 4], [2, 1], [2, 3], [3, 0], [3, 2]],
              (5, 0, 0, 2)),
    (32, 16): ([[0, 0], [1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [2, 0],
                [2, 1], [2, 2], [2, 3], [2, 4], [3, 0], [3, 1], [3, 2],
                [3, 3]], (5, 0.05, 0.2, 0.5)),
    (110, 2): ([[2, 8]], (5, 0.5, 0, 0)),
    (110, 4): ([[1, 11], [2, 7], [3, 3]], (1, 0, 0, 1)),
    (110, 8): ([[1, 4], [1, 11], [2, 0], [2, 7], [2, 14], [3, 3], [3, 10]],
               (5, 0, 0, 1)),
    (110, 16): ([[1, 1], [1, 4], [1, 7], [1, 10], [1, 13], [1, 16], [2, 1],
                 [2, 4], [2, 7], [2, 11], [2, 15], [3, 1], [3, 5], [3, 9],
                 [3, 13]], (5, 0, 0.5, 1)),
}
# mmpretrain's CIFAR10 checks every file against the md5 sums of the real
# release, with or without download=True; no tiny set can match them. The
# tiny set is read by the real class after its expected sums are cleared
# (``[name, None]``, the class's own "no checksum" entry), then
# tools/train.py runs unchanged.
TRAIN_WITHOUT_CIFAR_MD5 = (
    'import runpy, sys\n'
    'from mmpretrain.datasets import CIFAR10\n'
    'CIFAR10.train_list = [[f, None] for f, _ in CIFAR10.train_list]\n'
    'CIFAR10.test_list = [[f, None] for f, _ in CIFAR10.test_list]\n'
    'sys.argv = sys.argv[1:]\n'
    "runpy.run_path(sys.argv[0], run_name='__main__')\n")
# The InfoPro-initialised Faster-RCNN needs a converted checkpoint; it is
# trained in tests/test_tools/test_model_converters.py.
CONVERTER_TESTED = ['faster-rcnn_r101_fpn_infopro-imagenet_1x_coco.py']
# Module-parallel configs need K processes: trained through
# tools/dist_train.sh in tests/test_tools/test_dist_train.py.
DIST_TESTED = ['demo/deeplabv3_r18-d8_infopro-k2-mp_digits-64x64.py']


def loaders(key: str, value) -> list:
    return [
        f'{loader}.{key}={value}'
        for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')
    ]


def common(batch: int = 2) -> list:
    return [
        f'train_dataloader.batch_size={batch}', 'val_dataloader.batch_size=1',
        *loaders('num_workers', 0), *loaders('persistent_workers', False),
        'default_hooks.logger.interval=1'
    ]


def cityscapes_e2e(root) -> list:
    return [
        *loaders('dataset.data_root', f'{root}/cityscapes'),
        'train_dataloader.dataset.pipeline.2.scale=(128,64)',
        'train_dataloader.dataset.pipeline.3.crop_size=(64,64)',
        'val_dataloader.dataset.pipeline.1.scale=(128,64)',
        'data_preprocessor.size=(64,64)', 'model.pretrained=None',
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', *common()
    ]


def cityscapes(root) -> list:
    return [
        option for option in cityscapes_e2e(root)
        if option != 'model.pretrained=None'
    ] + [
        'model.architecture.pretrained=None', 'model.split.input_size=(64,64)'
    ]


def cityscapes_beyond_resnet(root) -> list:
    return cityscapes(root) + ['model.architecture.backbone.init_cfg=None']


def cityscapes_e2e_beyond_resnet(root) -> list:
    return cityscapes_e2e(root) + ['model.backbone.init_cfg=None']


def imagenet(root) -> list:
    return [
        *loaders('dataset.data_root', f'{root}/imagenet'),
        'train_dataloader.dataset.pipeline.1.scale=32',
        'val_dataloader.dataset.pipeline.1.scale=36',
        'val_dataloader.dataset.pipeline.2.crop_size=32',
        'model.split.input_size=(32,32)',
        'train_cfg.max_epochs=1', *common()
    ]


def coco(root) -> list:
    return [
        *loaders('dataset.data_root', f'{root}/coco/'),
        f'val_evaluator.ann_file={root}/coco/annotations/'
        'instances_val2017.json',
        f'test_evaluator.ann_file={root}/coco/annotations/'
        'instances_val2017.json',
        'train_dataloader.dataset.pipeline.2.scale=(128,96)',
        'val_dataloader.dataset.pipeline.1.scale=(128,96)',
        'model.backbone.init_cfg=None', 'train_cfg.max_epochs=1',
        # after 2 iterations no score passes 0.05; fewer RoIs for speed
        'model.test_cfg.rcnn.score_thr=0.0',
        'model.train_cfg.rpn_proposal.max_per_img=100',
        'model.train_cfg.rcnn.sampler.num=64', *common()
    ]


def imagenet_swin_schedule(root) -> list:
    # mmpretrain's Swin/ConvNeXt schedule starts its cosine after 20
    # warm-up epochs: start it at 0 for the 1-epoch run
    return imagenet(root) + ['param_scheduler.1.begin=0']


def cifar10(root) -> list:
    # 4 training images at batch 4, 2 epochs: 2 iterations, 1 validation
    return [
        *loaders('dataset.data_root', f'{root}/cifar10'),
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', *common(batch=4)
    ]


def cifar10_asynchronous(root) -> list:
    # 4 training images at batch 4: 2 iterations per local module, one
    # validation at the end of the last module's phase
    return [
        *loaders('dataset.data_root', f'{root}/cifar10'),
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', *common(batch=4)
    ]


def cifar10_row(config: str):
    """(depth, method, K) of a CIFAR-10 row config; method None for E2E."""
    match = re.fullmatch(r'cifar10/resnet(\d+)_([a-z0-9-]+?)(?:_k(\d+))?'
                         r'_cifar10\.py', config)
    depth, method, k = match.groups()
    if method == 'e2e':
        return int(depth), None, 1
    return int(depth), method, int(k)


def authors_weights(depth: int, k: int, method: str) -> list:
    """Loss weight of every head of every local module, the authors' way.

    train.py / networks/resnet.py: module i = 0..K-2 weighs
    ``ixx_r * recon + ixy_r * task`` with r = i / (K - 2) (0 when K = 2),
    ``ixx_r = ixx_1 * (1 - r) + ixx_2 * r`` and the same for ixy. Greedy SL
    and DGL: their classifier only, weight 1.
    """
    ixx_1, ixy_1, ixx_2, ixy_2 = CIFAR10_AUTHORS[depth, k][1]
    weights = []
    for i in range(k - 1):
        if not method.startswith('infopro'):
            weights.append(dict(task=1.0))
            continue
        r = i / (k - 2) if k > 2 else 0
        weights.append(
            dict(recon=ixx_1 * (1 - r) + ixx_2 * r,
                 task=ixy_1 * (1 - r) + ixy_2 * r))
    return weights


def demo(root) -> list:
    return [
        *loaders('dataset.data_root', f'{root}/digits_seg'),
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'default_hooks.checkpoint.interval=2', *common(batch=4)
    ]


@pytest.fixture(scope='module')
def digits(tiny_data):
    from infopro_mm.datasets import make_digits_segmentation
    make_digits_segmentation(
        str(tiny_data / 'digits_seg'), num_train=8, num_val=4)
    return tiny_data


def test_every_config_is_covered():
    configs = {
        osp.relpath(p, osp.join(REPO, 'configs'))
        for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                           recursive=True)
    }
    configs = {c for c in configs if '_base_' not in c.split(osp.sep)}
    assert configs == set(CITYSCAPES + CITYSCAPES_E2E + IMAGENET + COCO +
                          DEMO + CONVERTER_TESTED + DIST_TESTED + CIFAR10 +
                          CIFAR10_ASYNCHRONOUS +
                          CITYSCAPES_BEYOND_RESNET +
                          CITYSCAPES_E2E_BEYOND_RESNET +
                          IMAGENET_BEYOND_RESNET)


@pytest.mark.parametrize(
    'config', CITYSCAPES + CITYSCAPES_E2E + CITYSCAPES_BEYOND_RESNET +
    CITYSCAPES_E2E_BEYOND_RESNET)
def test_cityscapes_configs_carry_mmseg_multi_scale_flip_tta(config):
    """`tools/test.py CONFIG CKPT --tta` is the paper's MS+Flip row:
    mmseg's SegTTAModel over scales 0.5-1.75, each unflipped and flipped."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert cfg.tta_model.type == 'SegTTAModel'
    load, tta = cfg.tta_pipeline
    assert (load.type, tta.type) == ('LoadImageFromFile', 'TestTimeAug')
    scales, flips, *_ = tta.transforms
    assert [t.scale_factor for t in scales] == [0.5, 0.75, 1.0, 1.25, 1.5,
                                                 1.75]
    assert [(t.type, t.prob) for t in flips] == [('RandomFlip', 0.),
                                                  ('RandomFlip', 1.)]


def head_kind(head) -> tuple:
    """(class, arch) of a local head; (class, inner class) of a wrapper."""
    inner = getattr(head, 'head', None)
    if inner is not None:
        return type(head).__name__, type(inner).__name__
    return type(head).__name__, getattr(head, 'arch', None)


@pytest.mark.parametrize('config', CIFAR10)
def test_cifar10_rows_use_the_authors_recipe(config, mmpretrain_scope):
    """Split points, heads and per-module lambdas of the built model."""
    from mmengine.config import Config

    from infopro_mm.registry import MODELS
    depth, method, k = cifar10_row(config)
    cfg = Config.fromfile(osp.join(REPO, 'configs', config))
    assert cfg.train_dataloader.batch_size == 1024
    assert cfg.optim_wrapper.optimizer == dict(
        type='SGD', lr=0.8, momentum=0.9, weight_decay=1e-4, nesterov=True)
    assert cfg.train_cfg.max_epochs == 160
    model = MODELS.build(cfg.model)
    if method is None:
        assert type(model).__name__ == 'ImageClassifier'
        assert model.backbone.depth == depth
        return
    assert model.architecture.backbone.depth == depth
    split = CIFAR10_AUTHORS[depth, k][0]
    assert model.splitter.boundaries == [
        'stem' if s == 0 else f'layer{s}.{b}' for s, b in split
    ]
    heads = {
        name: head_kind(head)
        for name, head in model.local_heads[0].items()
    }
    assert heads == {
        'greedy-sl': dict(task=('LocalClsHead', 'linear')),
        'dgl': dict(task=('LocalClsHead', 'small')),
        'infopro-softmax': dict(recon=('ReconstructionHead', 'small'),
                                task=('LocalClsHead', 'small')),
        'infopro-contrast': dict(recon=('ReconstructionHead', 'small'),
                                 task=('ContrastHead', 'small')),
        # MAN wraps the heads of the method it extends
        'infopro-man': dict(recon=('MomentumAuxHead', 'ReconstructionHead'),
                            task=('MomentumAuxHead', 'ContrastHead')),
        'dgl-man': dict(task=('MomentumAuxHead', 'LocalClsHead')),
        'auglocal': dict(task=('AugLocalHead', None)),
    }[method]
    if method == 'auglocal':  # the authors' ResNet-32 depth (README.md)
        assert model.local_heads[0]['task'].depth == 2
    expected = authors_weights(depth, k, method)
    for i, weights in enumerate(expected):
        assert model.module_weights(i) == pytest.approx(weights), i


@pytest.mark.parametrize('config,overrides,metric', [
    *[(c, cityscapes, 'mIoU') for c in CITYSCAPES],
    *[(c, cityscapes_e2e, 'mIoU') for c in CITYSCAPES_E2E],
    *[(c, imagenet, 'accuracy/top1') for c in IMAGENET],
    *[(c, cityscapes_beyond_resnet, 'mIoU')
      for c in CITYSCAPES_BEYOND_RESNET],
    *[(c, cityscapes_e2e_beyond_resnet, 'mIoU')
      for c in CITYSCAPES_E2E_BEYOND_RESNET],
    *[(c, imagenet_swin_schedule, 'accuracy/top1')
      for c in IMAGENET_BEYOND_RESNET],
    *[(c, coco, 'coco/bbox_mAP') for c in COCO],
    *[(c, demo, 'mIoU') for c in DEMO],
    *[(c, cifar10, 'accuracy/top1') for c in CIFAR10],
    *[(c, cifar10_asynchronous, 'accuracy/top1')
      for c in CIFAR10_ASYNCHRONOUS],
])
def test_config_trains_and_validates(config, overrides, metric, digits,
                                     tmp_path):
    work_dir = tmp_path / 'work'
    tool = ['tools/train.py']
    if config.startswith('cifar10/'):
        tool = ['-c', TRAIN_WITHOUT_CIFAR_MD5, *tool]
    asynchronous = config in CIFAR10_ASYNCHRONOUS
    run_tool(*tool, osp.join(REPO, 'configs', config),
             '--work-dir', str(work_dir), '--cfg-options',
             *overrides(digits))
    log = open(sorted(glob.glob(str(work_dir / '*' / '*.log')))[-1]).read()
    assert f'{metric}: ' in log, log[-3000:]
    assert glob.glob(str(work_dir / '*.pth'))
    if asynchronous:
        # one phase per local module, then the rest of the network
        k = cifar10_row(config)[2]
        assert log.count('Asy-InfoPro phase') == k, log[-3000:]
        assert log.count(f'{metric}: ') == 1
    elif config.startswith('cifar10/'):
        # every local loss whose authors' weight is not 0 is logged (a head
        # with weight 0 is skipped, e.g. the first module's task head at
        # ResNet-32 K=4), and no other
        depth, method, k = cifar10_row(config)
        expected = {
            f'local{i + 1}.loss_{name}'
            for i, weights in enumerate(
                authors_weights(depth, k, method) if method else [])
            for name, weight in weights.items() if weight != 0
        }
        assert set(re.findall(r'local\d+\.loss_\w+', log)) == expected
    elif any(m in config for m in ('infopro', 'dgl', 'auglocal')):
        assert 'local1.loss_task' in log
        if 'dgl' in config or 'auglocal' in config:
            assert 'local1.loss_recon' not in log
        else:
            assert 'local1.loss_recon' in log
