"""tools/test.py scores the checkpoint it is given, whatever its layout,
and saves or draws predictions as the downstream tools do."""
import glob
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO, demo_data_options, run_tool
from mmengine.config import Config
from mmengine.fileio import load
from PIL import Image
from mmengine.registry import DefaultScope

from infopro_mm.registry import MODELS

DEMO = osp.join(REPO, 'configs/demo')
E2E = osp.join(DEMO, 'deeplabv3_r18-d8_e2e_digits-64x64.py')
INFOPRO = osp.join(DEMO, 'deeplabv3_r18-d8_infopro-k2_digits-64x64.py')
CLASSIFIER = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')


def build(config):
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


def scores(config, checkpoint, root, tmp_path, *flags):
    result = run_tool('tools/test.py', config, checkpoint, '--work-dir',
                      str(tmp_path / 'test'), *flags, '--cfg-options',
                      *demo_data_options(root))
    found = re.search(r'aAcc: ([\d.]+)\s+mIoU: ([\d.]+)',
                      result.stdout + result.stderr)
    return found.groups()


def test_both_layouts_into_both_configs(tiny_digits_seg, tmp_path):
    # Weights that predict class 3 everywhere: any other weights (a model
    # left at its initialisation) score differently.
    torch.manual_seed(5)
    plain = build(E2E).state_dict()
    plain['decode_head.conv_seg.bias'][3] = 100.
    plain_file = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=plain), plain_file)
    infopro = build(INFOPRO).state_dict()
    infopro.update({f'architecture.{k}': v for k, v in plain.items()})
    infopro_file = str(tmp_path / 'infopro.pth')
    torch.save(dict(state_dict=infopro), infopro_file)

    reference = scores(E2E, plain_file, tiny_digits_seg, tmp_path)
    assert scores(INFOPRO, plain_file, tiny_digits_seg,
                  tmp_path) == reference
    assert scores(E2E, infopro_file, tiny_digits_seg, tmp_path) == reference
    # multi-scale + flip around the InfoPro model: class 3 everywhere still
    assert scores(INFOPRO, infopro_file, tiny_digits_seg, tmp_path,
                  '--tta') == reference


def test_checkpoint_of_another_architecture_is_refused(tiny_digits_seg,
                                                       tmp_path):
    state = build(E2E).state_dict()
    state['decode_head.conv_seg.weight'] = torch.zeros(5, 64, 1, 1)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=state), path)
    result = subprocess.run(
        [sys.executable, 'tools/test.py', INFOPRO, path, '--work-dir',
         str(tmp_path / 'test'), '--cfg-options',
         *demo_data_options(tiny_digits_seg)],
        cwd=REPO, capture_output=True, text=True)
    assert result.returncode != 0
    assert 'CheckpointMismatchError: the checkpoint does not match the ' \
        'model' in result.stderr
    assert 'architecture.decode_head.conv_seg.weight (5, 64, 1, 1) vs ' \
        '(11, 64, 1, 1)' in result.stderr


def test_out_and_show_dir_as_mmseg(tiny_digits_seg, tmp_path):
    # class 3 everywhere, as above
    torch.manual_seed(5)
    plain = build(E2E).state_dict()
    plain['decode_head.conv_seg.bias'][3] = 100.
    path = str(tmp_path / 'plain.pth')
    torch.save(dict(state_dict=plain), path)
    out, vis = tmp_path / 'pred', tmp_path / 'vis'
    run_tool('tools/test.py', INFOPRO, path, '--work-dir',
             str(tmp_path / 'test'), '--out', str(out), '--show-dir',
             str(vis), '--cfg-options', *demo_data_options(tiny_digits_seg),
             'default_hooks.visualization.interval=1')  # every batch
    val = sorted(glob.glob(osp.join(tiny_digits_seg, 'img_dir/val/*')))
    maps = sorted(glob.glob(str(out / '*.png')))
    assert [osp.splitext(osp.basename(p))[0] for p in maps] == [
        osp.splitext(osp.basename(p))[0] for p in val
    ]
    for pred in maps:  # label ids, one PNG per image
        assert set(np.unique(np.array(Image.open(pred)))) == {3}
    drawn = glob.glob(str(vis / 'vis_data' / 'vis_image' / '*.png'))
    assert len(drawn) == len(val)


def test_out_as_mmpretrain_dumps_a_pickle(tiny_data, tmp_path,
                                          mmpretrain_scope):
    cfg = Config.fromfile(CLASSIFIER)
    path = str(tmp_path / 'classifier.pth')
    torch.save(dict(state_dict=MODELS.build(cfg.model).state_dict()), path)
    out = tmp_path / 'predictions.pkl'
    run_tool('tools/test.py', CLASSIFIER, path, '--work-dir',
             str(tmp_path / 'test'), '--out', str(out), '--cfg-options',
             f'test_dataloader.dataset.data_root={tiny_data}/imagenet')
    predictions = load(str(out))
    val = glob.glob(str(tiny_data / 'imagenet' / 'val' / '*.JPEG'))
    assert len(predictions) == len(val) > 0
    assert {'pred_score', 'pred_label'} <= set(predictions[0])
    with pytest.raises(AssertionError, match=r'\.pkl file'):
        run_tool('tools/test.py', CLASSIFIER, path, '--out',
                 str(tmp_path / 'predictions'))
