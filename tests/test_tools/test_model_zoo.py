"""model-index.yml and its metafile: every entry names a config that builds
and a converter target that fits it; the README's table is the metafile's."""
import importlib.util
import os.path as osp

import pytest
from conftest import REPO
from mmengine.registry import DefaultScope

from infopro_mm.apis import inference_config
from infopro_mm.registry import MODELS


def load_tool(path):
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(path))[0], osp.join(REPO, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ZOO = load_tool('tools/misc/model_zoo.py')
CONVERTER = load_tool('tools/model_converters/infopro_to_mm.py')
MODELS_ = ZOO.load_models()


def test_the_authors_eight_releases_are_listed():
    released = [m for m in MODELS_ if 'Converted From' in m]
    assert len(released) == 8
    assert len({m['Weights'] for m in released}) == 8
    for model in released:
        source = model['Converted From']
        assert model['Weights'] == source['Weights']
        assert source['Weights'].startswith('https://cloud.tsinghua.edu.cn/')
        assert source['Mirror'].startswith('https://drive.google.com/')
        assert source['Code'] == \
            'https://github.com/blackfeather-wang/InfoPro-Pytorch'
    segmentation = [
        m for m in released
        if m['Results'][0]['Task'] == 'Semantic Segmentation'
    ]
    assert len(segmentation) == 5
    for model in segmentation:  # single scale, MS, MS + flip apart
        assert set(model['Results'][0]['Metrics']) == {
            'mIoU', 'mIoU(ms)', 'mIoU(ms+flip)'
        }


def test_names_are_unique_and_configs_exist():
    names = [m['Name'] for m in MODELS_]
    assert len(names) == len(set(names))
    for model in MODELS_:
        assert osp.isfile(osp.join(REPO, model['Config'])), model['Name']
        assert model['In Collection'] == 'InfoPro'


@pytest.mark.parametrize(
    'model', [m for m in MODELS_ if 'Converted From' in m],
    ids=lambda m: m['Name'])
def test_release_config_builds_its_converter_target(model):
    target = model['Converted From']['Target']
    assert target in CONVERTER.TARGETS
    built = CONVERTER.build_target_model(
        osp.join(REPO, model['Config']), target)
    expected = dict(
        mmseg='EncoderDecoder', **{'mmpretrain-classifier':
                                   'ImageClassifier'})[target]
    assert type(built).__name__ == expected


@pytest.mark.parametrize(
    'model', [m for m in MODELS_ if 'Converted From' not in m],
    ids=lambda m: m['Name'])
def test_own_run_config_builds(model):
    cfg = inference_config(osp.join(REPO, model['Config']))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        MODELS.build(cfg.model)


def test_readme_table_is_generated_from_the_metafile():
    assert ZOO.main(['--check', osp.join(REPO, 'README.md')]) == 0
    block = ZOO.render()
    for model in MODELS_:
        assert f'| {model["Name"]} |' in block
    for target in ('mmseg', 'mmpretrain-classifier'):
        assert f'--target {target} --config CONFIG' in block
