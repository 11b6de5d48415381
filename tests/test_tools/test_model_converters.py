"""tools/model_converters/infopro_to_mm.py: InfoPro checkpoints (the
authors' ImageNet and Cityscapes releases, our own training) become plain
OpenMMLab checkpoints that load strictly and compute the same outputs."""
import glob
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
import torchvision
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import load_checkpoint
from torch import nn

from conftest import REPO, run_tool

CONVERTER = osp.join(REPO, 'tools/model_converters/infopro_to_mm.py')
TOY = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')
SEG_E2E = osp.join(REPO, 'configs/demo',
                   'deeplabv3_r18-d8_e2e_digits-64x64.py')
SEG_INFOPRO = osp.join(REPO, 'configs/demo',
                       'deeplabv3_r18-d8_infopro-k2_digits-64x64.py')
DET_INFOPRO = osp.join(REPO, 'configs',
                       'faster-rcnn_r101_fpn_infopro-imagenet_1x_coco.py')
DET_E2E = osp.join(REPO, 'configs',
                   'faster-rcnn_r101_fpn_e2e-imagenet_1x_coco.py')
MISMATCH = 'do not match exactly'  # mmengine's warning for a partial load


def _load_converter():
    spec = importlib.util.spec_from_file_location('infopro_to_mm', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cv = _load_converter()


# ----------------------------------------------------------------------
# checkpoints in the released layouts, with random weights
def _randomise_bn(model: nn.Module, inputs: torch.Tensor) -> None:
    """Random BN affine parameters and running statistics measured on
    ``inputs``, so that a swapped or missing BN tensor changes outputs.
    Zero-initialised BN weights (``zero_init_residual``) stay zero."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            if bn.weight.any():
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration
        model.train()
        model(inputs)
    for bn in bns:
        bn.momentum = 0.1
    model.eval()


def released_aux_nets(in_channels: int) -> nn.ModuleDict:
    """Auxiliary nets shaped like the ImageNet release's: decoder ``w``
    (paper Table 9) and classifier ``psi`` (Table 10)."""

    def conv_bn(cin, cout, kernel, stride=1):
        return [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU()
        ]

    decoder = nn.Sequential(*conv_bn(in_channels, 128, 1),
                            nn.Upsample(scale_factor=2),
                            *conv_bn(128, 32, 3), nn.Upsample(scale_factor=2),
                            *conv_bn(32, 12, 3), nn.Upsample(scale_factor=2),
                            nn.Conv2d(12, 3, 3, padding=1), nn.Sigmoid())
    head = nn.Sequential(*conv_bn(in_channels, 128, 1),
                         *conv_bn(128, 256, 3, 2), *conv_bn(256, 512, 3, 2),
                         *conv_bn(512, 2048, 1), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(2048, 1000))
    return nn.ModuleDict(
        dict(decoder=nn.ModuleDict(dict(decoder=decoder)), head=head))


def torchvision_release(arch: str, seed: int = 0, **kwargs):
    """A torchvision network with random weights and its state dict in the
    ImageNet release's layout (torchvision keys + ``decoder.*``/``head.*``).
    """
    torch.manual_seed(seed)
    model = getattr(torchvision.models, arch)(weights=None, **kwargs)
    _randomise_bn(model, torch.randn(4, 3, 64, 64))
    state_dict = dict(model.state_dict())
    # the first module of InfoPro* K=2 ends inside layer2 (512 channels
    # for Bottleneck networks, 128 for BasicBlock ones)
    width = model.layer2[0].conv1.in_channels * 2
    aux = {k: v for k, v in released_aux_nets(width).state_dict().items()}
    state_dict.update(aux)
    return model, state_dict, sorted(aux)


def save_release(state_dict: dict, path, wrapped: bool,
                 module_prefix: bool) -> str:
    """Write like the release: ``module.`` keys from DataParallel and
    ``{'state_dict', 'epoch', 'optimizer'}``, or a bare state dict."""
    if module_prefix:
        state_dict = {f'module.{k}': v for k, v in state_dict.items()}
    obj = dict(
        state_dict=state_dict, epoch=90, best_acc=0.5,
        optimizer=dict(state={}, param_groups=[dict(lr=0.1)])) \
        if wrapped else state_dict
    torch.save(obj, str(path))
    return str(path)


def write_config(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def mmpretrain_config(tmp_path, base: str) -> str:
    return write_config(tmp_path, osp.basename(base),
                        f"_base_ = ['mmpretrain::{base}']\n")


def build(cfg: dict, scope: str) -> nn.Module:
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def torchvision_stages(model: nn.Module, x: torch.Tensor) -> list:
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    outs = []
    for name in ('layer1', 'layer2', 'layer3', 'layer4'):
        x = getattr(model, name)(x)
        outs.append(x)
    return outs


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    scale = expected.abs().max().item() + 1e-12
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def no_new_files(directory, before: set) -> None:
    assert set(os.listdir(directory)) == before, \
        f'left on disk: {set(os.listdir(directory)) - before}'


# ----------------------------------------------------------------------
# the ImageNet release
@pytest.mark.parametrize(
    'arch, base, wrapped, module_prefix',
    [
        # Bottleneck with downsample, like ResNet-101/152
        ('resnet50', 'resnet/resnet50_8xb32_in1k.py', True, True),
        # grouped 3x3 convs, like ResNeXt-101 32x8d
        ('resnext50_32x4d', 'resnext/resnext50-32x4d_8xb32_in1k.py', False,
         False),
        ('resnet18', 'resnet/resnet18_8xb32_in1k.py', True, False),
    ])
def test_imagenet_release_to_classifier_matches_torchvision(
        tmp_path, arch, base, wrapped, module_prefix):
    model, state_dict, aux = torchvision_release(arch)
    src = save_release(state_dict, tmp_path / 'release.pth', wrapped,
                       module_prefix)
    config = mmpretrain_config(tmp_path, base)
    dst = str(tmp_path / 'out' / 'classifier.pth')

    meta = cv.convert_checkpoint(src, dst, 'mmpretrain-classifier', config)

    saved = torch.load(dst, weights_only=True)
    assert saved['meta'] == meta
    assert meta['source'] == 'imagenet-release'
    assert meta['model_type'] == 'ImageClassifier'
    assert sorted(meta['dropped_auxiliary_keys']) == aux
    assert meta['dropped_keys'] == [] and meta['filled_keys'] == []
    assert 'head.fc.weight' in saved['state_dict']
    assert not any(k.startswith(('decoder.', 'head.0', 'module.', 'fc.'))
                   for k in saved['state_dict'])
    if wrapped:
        assert meta['source_epoch'] == 90

    classifier = build(Config.fromfile(config).model, 'mmpretrain')
    load_checkpoint(classifier, dst, strict=True)
    classifier.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_same(classifier(x, mode='tensor'), model(x))


@pytest.mark.slow
@pytest.mark.parametrize('arch, target, config', [
    ('resnet101', 'mmpretrain-classifier',
     'mmpretrain::resnet/resnet101_8xb32_in1k.py'),
    ('resnet152', 'mmpretrain-classifier',
     'mmpretrain::resnet/resnet152_8xb32_in1k.py'),
    ('resnext101_32x8d', 'mmpretrain-classifier',
     'mmpretrain::resnext/resnext101-32x8d_8xb32_in1k.py'),
    ('resnet101', 'mmdet-backbone', DET_INFOPRO),
])
def test_released_imagenet_architectures_match_full_size(
        tmp_path, arch, target, config):
    """The three released networks, at full size, rename onto mmpretrain
    and mmdet models key for key and shape for shape."""
    if config.startswith('mmpretrain::'):
        config = mmpretrain_config(tmp_path, config[len('mmpretrain::'):])
    with torch.device('meta'):
        network = getattr(torchvision.models, arch)(weights=None)
    released = {k: torch.empty(v.shape, dtype=v.dtype)
                for k, v in network.state_dict().items()}
    released.update(released_aux_nets(512).state_dict())
    model_sd, aux, _ = cv.to_model_layout(
        released, cv.detect_source(released),
        cv.AUX_PREFIXES['imagenet-release'])
    kept, dropped = cv.select_target_keys(model_sd, target)
    model = cv.build_target_model(config, target)
    matched, filled = cv.match_target(kept, model, arch)
    assert list(matched) == list(model.state_dict()) and not filled
    assert aux and all(k.startswith(('decoder.', 'head.')) for k in aux)
    assert dropped == ([] if target == 'mmpretrain-classifier' else
                       ['head.fc.weight', 'head.fc.bias'])


def test_imagenet_release_to_backbones_for_pretrained_init_cfg(tmp_path):
    """Backbone checkpoints are what ``init_cfg=dict(type='Pretrained')``
    loads: mmengine strips only ``module.``, never ``backbone.``."""
    model, state_dict, aux = torchvision_release('resnet50')
    src = save_release(state_dict, tmp_path / 'release.pth', True, True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torchvision_stages(model, x)

    cases = [
        ('mmpretrain-backbone',
         mmpretrain_config(tmp_path, 'resnet/resnet50_8xb32_in1k.py'), None,
         'mmpretrain'),
        # the paper's detector config, its backbone at depth 50
        ('mmdet-backbone', DET_INFOPRO, {'model.backbone.depth': 50},
         'mmdet'),
    ]
    for target, config, options, scope in cases:
        dst = str(tmp_path / f'{target}.pth')
        meta = cv.convert_checkpoint(src, dst, target, config,
                                     cfg_options=options)
        saved = torch.load(dst, weights_only=True)['state_dict']
        assert 'conv1.weight' in saved and 'layer4.2.bn3.running_var' in saved
        assert not any(k.startswith('backbone.') for k in saved)
        assert sorted(meta['dropped_auxiliary_keys']) == aux
        assert meta['dropped_keys'] == ['head.fc.weight', 'head.fc.bias']

        cfg = Config.fromfile(config)
        if options:
            cfg.merge_from_dict(options)
        backbone_cfg = cfg.model.backbone
        backbone_cfg.update(out_indices=(0, 1, 2, 3),
                            init_cfg=dict(type='Pretrained', checkpoint=dst))
        backbone = build(backbone_cfg, scope)
        backbone.init_weights()
        for key, value in backbone.state_dict().items():
            assert torch.equal(value, state_dict[key]), key
        backbone.eval()
        with torch.no_grad():
            for out, ref in zip(backbone(x), expected):
                assert_same(out, ref)


# ----------------------------------------------------------------------
# the Cityscapes release (mmseg 0.x DeepLabV3 + InfoPro auxiliary nets)
def cityscapes_release(path) -> tuple:
    """A DeepLabV3 with random weights (the demo's ResNetV1c-18-D8) saved as
    an mmseg 0.x checkpoint with ``head_inter.*``/``decoder_inter.*``."""
    torch.manual_seed(1)
    model = build(Config.fromfile(SEG_E2E).model, 'mmseg')
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.eval()
    state_dict = dict(model.state_dict())
    head_inter = nn.Sequential(
        nn.Conv2d(32, 512, 3, padding=1, bias=False), nn.BatchNorm2d(512),
        nn.ReLU(), nn.Dropout2d(0.1), nn.Conv2d(512, 19, 1))
    decoder_inter = nn.Sequential(
        nn.Conv2d(32, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.Conv2d(12, 3, 3, padding=1))
    aux = {f'head_inter.{k}': v for k, v in head_inter.state_dict().items()}
    aux.update({f'decoder_inter.{k}': v
                for k, v in decoder_inter.state_dict().items()})
    state_dict.update(aux)
    classes = ('road', 'sidewalk', 'building')
    torch.save(
        dict(
            meta=dict(
                mmseg_version='0.11.0+', config='model = dict(...)',
                CLASSES=classes, PALETTE=[[128, 64, 128]] * 3, iter=40000),
            state_dict=state_dict,
            optimizer=dict(state={}, param_groups=[dict(lr=0.01)])),
        str(path))
    return model, sorted(aux), classes


@pytest.mark.parametrize('config', [SEG_E2E, SEG_INFOPRO],
                         ids=['plain-config', 'infopro-config'])
def test_cityscapes_release_to_mmseg(tmp_path, config):
    reference, aux, classes = cityscapes_release(tmp_path / 'city.pth')
    dst = str(tmp_path / 'deeplabv3.pth')

    meta = cv.convert_checkpoint(str(tmp_path / 'city.pth'), dst, 'mmseg',
                                 config)

    assert meta['source'] == 'cityscapes-release'
    assert meta['model_type'] == 'EncoderDecoder'
    assert sorted(meta['dropped_auxiliary_keys']) == aux
    assert meta['dataset_meta']['classes'] == classes
    segmentor = build(Config.fromfile(SEG_E2E).model, 'mmseg')
    load_checkpoint(segmentor, dst, strict=True)
    segmentor.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert_same(segmentor(x, mode='tensor'), reference(x, mode='tensor'))


# ----------------------------------------------------------------------
# our own InfoPro training
def _accuracy(output: str) -> float:
    found = re.findall(r'accuracy/top1: ([\d.]+)', output)
    assert found, output[-3000:]
    return float(found[-1])


def test_own_infopro_checkpoint_converts_and_loads(tiny_data, tmp_path,
                                                   monkeypatch):
    work_dir = str(tmp_path / 'work')
    data = [
        f'train_dataloader.dataset.data_root={tiny_data}/imagenet',
        f'val_dataloader.dataset.data_root={tiny_data}/imagenet',
        f'test_dataloader.dataset.data_root={tiny_data}/imagenet'
    ]
    run_tool('tools/train.py', TOY, '--work-dir', work_dir, '--cfg-options',
             'train_cfg.max_iters=2', *data)
    ckpt = osp.join(work_dir, 'iter_2.pth')
    dst = str(tmp_path / 'plain' / 'toy_classifier.pth')

    result = run_tool(CONVERTER, ckpt, dst, '--target',
                      'mmpretrain-classifier', '--config', TOY)
    assert 'auxiliary-net tensors: local_heads.*' in result.stdout
    saved = torch.load(dst, weights_only=True)
    meta = saved['meta']
    assert meta['source'] == 'infopro'
    assert meta['dropped_auxiliary_keys']
    assert all(k.startswith('local_heads.')
               for k in meta['dropped_auxiliary_keys'])
    assert not any(k.startswith(('architecture.', 'local_heads.'))
                   for k in saved['state_dict'])

    # the plain model loads it strictly and computes what InfoPro computes;
    # mmengine's torch.load of its own checkpoint needs what the tools set
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    cfg = Config.fromfile(TOY)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        infopro = MODELS.build(cfg.model)
    plain = build(cfg.model.architecture, 'mmpretrain')
    load_checkpoint(infopro, ckpt, strict=True)
    load_checkpoint(plain, dst, strict=True)
    infopro.eval()
    plain.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            plain(x, mode='tensor'), infopro(x, mode='tensor'))

    # backbone only, for init_cfg=dict(type='Pretrained')
    backbone_dst = str(tmp_path / 'plain' / 'toy_backbone.pth')
    cv.convert_checkpoint(ckpt, backbone_dst, 'mmpretrain-backbone', TOY)
    backbone = build(cfg.model.architecture.backbone, 'mmpretrain')
    load_checkpoint(backbone, backbone_dst, strict=True)
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, plain.backbone.state_dict()[key]), key

    # tools/test.py: the InfoPro config evaluates the training checkpoint
    # directly (invariant 5); the plain config evaluates the converted one
    infopro_eval = run_tool('tools/test.py', TOY, ckpt, '--work-dir',
                            str(tmp_path / 'test_infopro'), '--cfg-options',
                            *data)
    plain_cfg = Config.fromfile(TOY)
    plain_cfg.model = plain_cfg.model.architecture
    plain_cfg.custom_hooks = []
    plain_cfg.optim_wrapper = dict(
        type='OptimWrapper', optimizer=plain_cfg.optim_wrapper.optimizer)
    plain_cfg.dump(str(tmp_path / 'toy_plain.py'))
    plain_eval = run_tool('tools/test.py', str(tmp_path / 'toy_plain.py'),
                          dst, '--work-dir', str(tmp_path / 'test_plain'),
                          '--cfg-options', *data)
    for result in (infopro_eval, plain_eval):
        output = result.stdout + result.stderr
        assert 'Load checkpoint from' in output
        assert MISMATCH not in output, output[-3000:]
    assert _accuracy(plain_eval.stdout + plain_eval.stderr) == _accuracy(
        infopro_eval.stdout + infopro_eval.stderr)


# ----------------------------------------------------------------------
# Faster-RCNN from an InfoPro ImageNet backbone (paper Table 15)
def test_faster_rcnn_configs_differ_only_in_the_backbone_checkpoint():
    infopro, e2e = Config.fromfile(DET_INFOPRO), Config.fromfile(DET_E2E)
    assert e2e.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint='torchvision://resnet101')
    assert infopro.model.backbone.init_cfg.type == 'Pretrained'
    assert infopro.model.backbone.init_cfg.checkpoint.endswith(
        'infopro_r101_k2_imagenet_mmdet-backbone.pth')
    infopro.model.backbone.init_cfg = e2e.model.backbone.init_cfg
    assert infopro.model == e2e.model
    assert infopro.model.backbone.depth == 101
    assert infopro.train_cfg == e2e.train_cfg


@pytest.mark.slow
def test_faster_rcnn_trains_from_converted_infopro_backbone(
        tiny_data, tmp_path):
    # a released-layout ResNet-101; zero-initialised residual branches keep
    # the random network's features (and so the detector's losses) sane
    _, state_dict, _ = torchvision_release(
        'resnet101', zero_init_residual=True)
    src = save_release(state_dict, tmp_path / 'infopro_r101.pth', True, True)
    backbone_ckpt = str(tmp_path / 'infopro_r101_mmdet-backbone.pth')
    cv.convert_checkpoint(src, backbone_ckpt, 'mmdet-backbone', DET_INFOPRO)
    del state_dict
    os.remove(src)  # 200 MB

    coco = f'{tiny_data}/coco/'
    ann = f'{coco}annotations/instances_val2017.json'
    options = [f'model.backbone.init_cfg.checkpoint={backbone_ckpt}']
    for split in ('train', 'val', 'test'):
        options += [
            f'{split}_dataloader.dataset.data_root={coco}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    options += [
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}',
        'train_dataloader.batch_size=2',
        'train_dataloader.dataset.pipeline.2.scale=(128,96)',
        'val_dataloader.dataset.pipeline.1.scale=(128,96)',
        'test_dataloader.dataset.pipeline.1.scale=(128,96)',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint=None', 'env_cfg.dist_cfg.backend=gloo',
        # fewer RoIs: the tiny images hold 3 boxes each
        'model.train_cfg.rpn_proposal.max_per_img=200',
        'model.train_cfg.rcnn.sampler.num=64',
        'model.test_cfg.rpn.max_per_img=100',
        # keep every detection of the barely trained detector
        'model.test_cfg.rcnn.score_thr=0.0',
    ]
    work_dir = str(tmp_path / 'work')
    result = run_tool('tools/train.py', DET_INFOPRO, '--work-dir', work_dir,
                      '--cfg-options', *options)

    logs = glob.glob(osp.join(work_dir, '*', '*.log'))
    assert len(logs) == 1
    log = open(logs[0]).read()
    assert f'load model from: {backbone_ckpt}' in log
    assert f'Loads checkpoint by local backend from path: {backbone_ckpt}' \
        in log
    assert MISMATCH not in log, log[-3000:]
    assert 'Epoch(train) [1][2/2]' in log
    losses = [float(v) for v in re.findall(r' loss: ([\d.]+)', log)]
    assert losses and all(v < 100 for v in losses), losses
    assert re.search(r'coco/bbox_mAP: [\d.]+', log), \
        (result.stdout + result.stderr)[-3000:]
    os.remove(backbone_ckpt)  # 170 MB


# ----------------------------------------------------------------------
# bad input fails loudly and leaves nothing on disk
@pytest.fixture
def resnet18_release(tmp_path):
    _, state_dict, _ = torchvision_release('resnet18')
    config = mmpretrain_config(tmp_path, 'resnet/resnet18_8xb32_in1k.py')
    return state_dict, config


@pytest.mark.parametrize('corruption, expected', [
    ('missing', ['missing keys (1)', 'backbone.layer4.1.conv2.weight']),
    ('unexpected', ['unexpected keys (1)', 'backbone.layer5.0.conv1.weight']),
    ('shape', ['shape mismatches (1)',
               'head.fc.weight: checkpoint (10, 512) vs model (1000, 512)']),
])
def test_mismatching_checkpoint_fails_and_writes_nothing(
        tmp_path, resnet18_release, corruption, expected):
    state_dict, config = resnet18_release
    state_dict = dict(state_dict)
    if corruption == 'missing':
        del state_dict['layer4.1.conv2.weight']
    elif corruption == 'unexpected':
        state_dict['layer5.0.conv1.weight'] = torch.zeros(1)
    else:
        state_dict['fc.weight'] = torch.zeros(10, 512)
    src = save_release(state_dict, tmp_path / 'bad.pth', True, True)
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    dst = out_dir / 'converted.pth'
    dst.write_bytes(b'previous result')  # an older output stays untouched
    before = set(os.listdir(out_dir))

    with pytest.raises(cv.ConversionError) as err:
        cv.convert_checkpoint(src, str(dst), 'mmpretrain-classifier', config)

    message = str(err.value)
    assert 'do not match ImageClassifier built from' in message, message
    for text in expected:
        assert text in message, message
    assert dst.read_bytes() == b'previous result'
    no_new_files(out_dir, before)


def test_cli_error_exit_code_and_message(tmp_path, resnet18_release):
    state_dict, config = resnet18_release
    state_dict = dict(state_dict)
    del state_dict['bn1.running_mean']
    src = save_release(state_dict, tmp_path / 'bad.pth', False, False)
    dst = tmp_path / 'out' / 'converted.pth'
    result = subprocess.run([
        sys.executable, CONVERTER, src,
        str(dst), '--target', 'mmpretrain-classifier', '--config', config
    ], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert 'error: the converted weights do not match ImageClassifier' \
        in result.stderr
    assert 'missing keys (1): backbone.bn1.running_mean' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not osp.exists(dst.parent)


def test_unreadable_inputs_fail_clearly(tmp_path, resnet18_release):
    state_dict, config = resnet18_release
    good = save_release(state_dict, tmp_path / 'good.pth', True, False)
    raw = open(good, 'rb').read()
    inputs = {
        'garbage.pth': (b'\x00not a checkpoint' * 10, 'cannot read'),
        'truncated.pth': (raw[:len(raw) // 2], 'cannot read'),
    }
    for name, (content, _) in inputs.items():
        (tmp_path / name).write_bytes(content)
    torch.save([1, 2, 3], str(tmp_path / 'list.pth'))
    inputs['list.pth'] = (None, 'holds a list')
    torch.save(dict(epoch=3, note='no weights'), str(tmp_path / 'meta.pth'))
    inputs['meta.pth'] = (None, 'no state dict of tensors')
    torch.save({'encoder.weight': torch.zeros(2)},
               str(tmp_path / 'unknown.pth'))
    inputs['unknown.pth'] = (None, 'Pass --source')
    inputs['absent.pth'] = (None, 'does not exist')

    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    for name, (_, expected) in inputs.items():
        with pytest.raises(cv.ConversionError, match=expected):
            cv.convert_checkpoint(
                str(tmp_path / name), str(out_dir / name),
                'mmpretrain-classifier', config)
    no_new_files(out_dir, set())

    # a wrong --source is caught by the strict check
    with pytest.raises(cv.ConversionError, match='missing keys'):
        cv.convert_checkpoint(good, str(out_dir / 'x.pth'),
                              'mmpretrain-classifier', config,
                              source='cityscapes-release')
    # so is a config whose model cannot be built
    bad_config = write_config(
        tmp_path, 'bad_config.py',
        "default_scope = 'mmpretrain'\nmodel = dict(type='NoSuchModel')\n")
    with pytest.raises(cv.ConversionError, match='cannot build'):
        cv.convert_checkpoint(good, str(out_dir / 'x.pth'),
                              'mmpretrain-classifier', bad_config)
    no_new_files(out_dir, set())


def test_refuses_to_write_over_the_input(tmp_path, resnet18_release):
    state_dict, config = resnet18_release
    src = save_release(state_dict, tmp_path / 'release.pth', True, False)
    original = open(src, 'rb').read()
    os.symlink(src, tmp_path / 'link.pth')
    for dst in (src, str(tmp_path / '.' / 'release.pth'),
                str(tmp_path / 'link.pth')):
        with pytest.raises(cv.ConversionError, match='is the input'):
            cv.convert_checkpoint(src, dst, 'mmpretrain-classifier', config)
    assert open(src, 'rb').read() == original


def test_interrupted_write_leaves_nothing(tmp_path, resnet18_release,
                                          monkeypatch):
    state_dict, config = resnet18_release
    src = save_release(state_dict, tmp_path / 'release.pth', True, False)
    out_dir = tmp_path / 'out'

    def failing_save(obj, f):
        f.write(b'half a checkpoint')
        raise OSError('disk full')

    monkeypatch.setattr(cv.torch, 'save', failing_save)
    with pytest.raises(OSError, match='disk full'):
        cv.convert_checkpoint(src, str(out_dir / 'converted.pth'),
                              'mmpretrain-classifier', config)
    assert os.listdir(out_dir) == []


# ----------------------------------------------------------------------
# Swin / ConvNeXt InfoPro checkpoints into mmdet backbones
@pytest.mark.parametrize('family,det_backbone', [
    ('mmseg-swin', None),  # mmseg's Swin -> mmdet's SwinTransformer
    ('convnext', 'mmpretrain.ConvNeXt'),
])
def test_beyond_resnet_infopro_checkpoint_to_mmdet_backbone(
        family, det_backbone, tmp_path):
    from tiny_models import CLS_HEADS, FAMILIES, SEG_HEADS, tiny_family_model

    from infopro_mm.models import InfoPro
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        infopro = InfoPro(
            architecture=tiny_family_model(family),
            split=dict(boundaries=[FAMILIES[family][2]]),
            local_heads=SEG_HEADS if 'swin' in family else CLS_HEADS,
            loss_weights=dict(recon=1.0, task=1.0))
    src = str(tmp_path / 'infopro.pth')
    torch.save(dict(state_dict=infopro.state_dict(), meta={}), src)
    backbone_cfg = dict(FAMILIES[family][1])
    if det_backbone:
        backbone_cfg['type'] = det_backbone
    config = tmp_path / 'det.py'
    config.write_text(f"default_scope = 'mmdet'\nmodel = dict(type="
                      f"'RetinaNet', backbone={backbone_cfg!r})\n")
    dst = str(tmp_path / 'backbone.pth')
    meta = cv.convert_checkpoint(src, dst, 'mmdet-backbone', str(config))
    assert all(k.startswith('local_heads.')
               for k in meta['dropped_auxiliary_keys'])
    with DefaultScope.overwrite_default_scope('mmdet'):
        backbone = MODELS.build(backbone_cfg)
    if det_backbone is None:
        assert type(backbone).__module__.startswith('mmdet.')
    load_checkpoint(backbone, dst, strict=True)
    ours = infopro.architecture.backbone
    ours.eval()
    backbone.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(backbone(x), ours(x)):
            torch.testing.assert_close(a, b)
