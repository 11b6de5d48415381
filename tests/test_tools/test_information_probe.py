"""tools/analysis/information_probe.py estimates I(h, x), I(h, y), I(h, r)."""
import json
import os.path as osp
import runpy
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from conftest import REPO, run_tool
from infopro_mm.datasets import make_digits_classification

TOOL = 'tools/analysis/information_probe.py'
NUM_LAYERS = 10  # CIFARResNet-20: stem + 3 stages x 3 blocks

CLASSIFIER = dict(
    type='ImageClassifier',
    backbone=dict(type='infopro_mm.CIFARResNet', depth=20),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
INFOPRO = dict(
    type='infopro_mm.InfoPro',
    architecture=CLASSIFIER,
    split=dict(num_modules=2),
    local_heads=dict(
        recon=dict(type='infopro_mm.ReconstructionHead', arch='small'),
        task=dict(type='infopro_mm.LocalClsHead', arch='small')),
    loss_weights=dict(recon=5, task=1))


def write_config(path: str, model: dict, data_root: str) -> str:
    """A digits-on-photos classifier config like the proxy benchmark's."""
    dataset = dict(
        type='infopro_mm.DigitsOnPhotosDataset', data_root=data_root)
    test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    cfg = Config(
        dict(
            default_scope='mmpretrain',
            custom_imports=dict(imports=['infopro_mm']),
            model=model,
            data_preprocessor=dict(
                num_classes=10,
                mean=[88.5, 80.5, 77.7],
                std=[44.6, 41.6, 42.2],
                to_rgb=True),
            train_dataloader=dict(
                batch_size=16,
                num_workers=0,
                dataset=dict(
                    dataset,
                    ann_file='train.json',
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='RandomCrop', crop_size=16, padding=2),
                        dict(type='PackInputs')
                    ])),
            test_dataloader=dict(
                batch_size=16,
                num_workers=0,
                dataset=dict(
                    dataset,
                    ann_file='test.json',
                    test_mode=True,
                    pipeline=test_pipeline))))
    cfg.dump(path)
    return path


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Tiny proxy; E2E and InfoPro K=2 configs with the same random weights."""
    root = tmp_path_factory.mktemp('probe')
    data = make_digits_classification(
        str(root / 'data'), num_train=48, num_test=16, size=16)
    made, nets = {}, {}
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for name, model in (('e2e', CLASSIFIER), ('infopro', INFOPRO)):
            config = write_config(str(root / f'{name}.py'), model, data)
            cfg = Config.fromfile(config)
            torch.manual_seed(0)
            nets[name] = MODELS.build(
                dict(cfg.model, data_preprocessor=cfg.data_preprocessor))
            made[name] = [config, str(root / f'{name}.pth')]
    nets['infopro'].architecture.load_state_dict(nets['e2e'].state_dict())
    for name, net in nets.items():
        torch.save({'state_dict': net.state_dict()}, made[name][1])
    return root, made


def test_probe_runs_layers_and_module_ends(runs):
    root, made = runs
    out = str(root / 'out')
    # --layers modules: every layer of the E2E run, module ends of InfoPro's
    result = run_tool(TOOL, *made['e2e'], '--name', 'e2e', '--run', 'infopro',
                      *made['infopro'], '--layers', 'modules', '--out', out,
                      '--epochs', '1', '--batch-size', '16', '--num-train',
                      '32')
    assert 'layer3.2' in result.stdout and 'I(h,x)' in result.stdout
    with open(osp.join(out, 'information_probe.json')) as f:
        report = json.load(f)
    assert osp.getsize(osp.join(out, 'information_probe.png')) > 10_000
    assert report['settings']['epochs'] == 1
    assert report['settings']['layers'] == 'modules'
    assert TOOL in report['command']
    e2e, infopro = report['runs']
    assert (e2e['name'], e2e['model'],
            e2e['num_modules']) == ('e2e', 'ImageClassifier', 1)
    assert (infopro['name'], infopro['model'],
            infopro['num_modules']) == ('infopro', 'InfoPro', 2)
    assert e2e['module_ends'] == [NUM_LAYERS - 1]
    assert infopro['module_ends'] == [4, NUM_LAYERS - 1]
    assert [e['index'] for e in e2e['layers']] == list(range(NUM_LAYERS))
    assert [e['index'] for e in infopro['layers']] == [4, NUM_LAYERS - 1]
    assert [e['name'] for e in e2e['layers']][:2] == ['stem', 'layer1.0']
    assert [e['channels']
            for e in e2e['layers']] == [16] * 4 + [32] * 3 + [64] * 3
    for run in report['runs']:
        assert (run['num_train'], run['num_test']) == (32, 16)
        assert run['chance'] == pytest.approx(
            dict(y=1 / 10, background=1 / 12, position=1 / 16))
        assert 0 < run['recon_floor'] < run['recon_ceiling'] <= 1
        for entry in run['layers']:
            assert entry['module_end'] == (
                entry['index'] in run['module_ends'])
            assert entry['recon'] <= run['recon_ceiling']
            for key in ('linear', 'small', 'background', 'position'):
                assert 0 <= entry[key] <= 1
    # same backbone weights: the same numbers, although the E2E run trained
    # other probes before (every probe starts from the same seed)
    for entry in infopro['layers']:
        same = e2e['layers'][entry['index']]
        assert {**entry, 'module_end': None} == {**same, 'module_end': None}


def test_checkpoint_with_missing_keys_fails_clearly(runs, monkeypatch):
    root, made = runs
    config, checkpoint = made['infopro']
    state = torch.load(checkpoint)['state_dict']
    del state['architecture.backbone.layer2.0.conv1.weight']
    broken = str(root / 'broken.pth')
    torch.save({'state_dict': state}, broken)
    out = str(root / 'broken')
    monkeypatch.setattr(sys, 'argv', [TOOL, config, broken, '--out', out])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(osp.join(REPO, TOOL), run_name='__main__')
    message = str(exc.value.code)
    assert message.startswith('information_probe: error: checkpoint')
    assert '1 missing keys: architecture.backbone.layer2.0.conv1.weight' \
        in message
    assert not osp.exists(out)


def test_explicit_layer_indices(runs):
    root, made = runs
    out = str(root / 'indices')
    # the module ends of the InfoPro run, probed on the end-to-end model
    run_tool(TOOL, *made['e2e'], '--layers', '9,4', '--out', out, '--epochs',
             '1', '--batch-size', '16', '--num-train', '32')
    with open(osp.join(out, 'information_probe.json')) as f:
        report = json.load(f)
    assert report['settings']['layers'] == [4, 9]
    (e2e, ) = report['runs']
    assert [(e['index'], e['name'], e['module_end'])
            for e in e2e['layers']] == [(4, 'layer2.0', False),
                                        (9, 'layer3.2', True)]


@pytest.mark.parametrize('layers, message', [
    ('10', 'has only 10 basic layers (0-9)'),
    ('2,x', 'comma-separated basic-layer indices'),
])
def test_bad_layer_indices_fail_clearly(runs, monkeypatch, capsys, layers,
                                        message):
    root, made = runs
    out = str(root / 'bad_layers')
    monkeypatch.setattr(sys, 'argv',
                        [TOOL, *made['e2e'], '--layers', layers, '--out', out])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(osp.join(REPO, TOOL), run_name='__main__')
    assert message in str(exc.value.code) + capsys.readouterr().err
    assert not osp.exists(out)
