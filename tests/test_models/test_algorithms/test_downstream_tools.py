"""mmseg's own inference tools work on InfoPro configs and checkpoints."""
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import REPO
from mmengine.config import Config
from mmengine.registry import DefaultScope

from infopro_mm.registry import MODELS

INFOPRO = osp.join(REPO, 'configs/demo',
                   'deeplabv3_r18-d8_infopro-k2_digits-64x64.py')


def test_init_model_builds_for_inference_and_predicts_like_training(
        tmp_path):
    from mmseg.apis import inference_model, init_model
    cfg = Config.fromfile(INFOPRO)
    with DefaultScope.overwrite_default_scope('mmseg'):
        torch.manual_seed(3)
        trained = MODELS.build(cfg.model)
    assert len(trained.local_heads) == 1 and trained.memory_profile
    path = str(tmp_path / 'infopro.pth')
    torch.save(dict(state_dict=trained.state_dict(),
                    meta=dict(dataset_meta=dict(classes=list('abcdefghijk'),
                                                palette=[[0, 0, 0]] * 11))),
               path)

    model = init_model(INFOPRO, path, device='cpu')
    # a test-time build: no local heads, no memory planning
    assert len(model.local_heads) == 0 and model.memory_profile is None
    assert (model.out_channels, model.num_classes) == (11, 11)
    assert model.align_corners is False
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3),
                                              dtype=np.uint8)
    result = inference_model(model, image)
    trained.eval()
    trained.cfg = model.cfg
    expected = inference_model(trained, image)
    assert torch.equal(result.pred_sem_seg.data, expected.pred_sem_seg.data)
    with pytest.raises(RuntimeError, match='built for inference'):
        model.forward(torch.zeros(1, 3, 64, 64), [], mode='loss')


def test_seg_tta_model_merges_infopro_predictions():
    from mmseg.models import SegTTAModel
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(INFOPRO)
    cfg.model.train_cfg = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model).eval()
        tta = SegTTAModel(module=model)
    samples = []
    for flip in (False, True):
        samples.append(
            SegDataSample(
                metainfo=dict(
                    img_path='a.png',
                    img_shape=(64, 64),
                    ori_shape=(64, 64),
                    flip=flip,
                    flip_direction='horizontal')))
    with torch.no_grad():
        preds = model(torch.zeros(2, 3, 64, 64), samples, mode='predict')
    merged = tta.merge_preds([preds])
    assert merged[0].pred_sem_seg.data.shape == (1, 64, 64)
