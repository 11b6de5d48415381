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


def save_checkpoint(model, path, classes):
    torch.save(
        dict(state_dict=model.state_dict(),
             meta=dict(dataset_meta=dict(
                 classes=classes, palette=[[0, 0, 0]] * len(classes)))),
        path)


def test_mmseg_inferencer_on_inference_config(tmp_path, mmseg_scope):
    from mmseg.apis import MMSegInferencer, inference_model, init_model

    from infopro_mm.apis import inference_config
    cfg = Config.fromfile(INFOPRO)
    torch.manual_seed(4)
    trained = MODELS.build(cfg.model)
    path = str(tmp_path / 'infopro.pth')
    save_checkpoint(trained, path, list('abcdefghijk'))

    inferencer = MMSegInferencer(
        model=inference_config(INFOPRO), weights=path, device='cpu')
    # the config as given would build the heads and plan the balanced split
    assert len(inferencer.model.local_heads) == 0
    assert inferencer.model.memory_profile is None
    image = np.random.default_rng(1).integers(0, 255, (64, 64, 3),
                                              dtype=np.uint8)
    result = inferencer(image, return_datasamples=True)
    expected = inference_model(init_model(INFOPRO, path, device='cpu'),
                               image)
    assert torch.equal(result.pred_sem_seg.data, expected.pred_sem_seg.data)


CLASSIFIER = osp.join(REPO, 'tests/data/configs/toy_infopro_imagenet.py')


def test_mmpretrain_get_model_and_inferencer_on_infopro_classifier(
        tmp_path, mmpretrain_scope):
    from mmpretrain import ImageClassificationInferencer, get_model

    from infopro_mm.apis import inference_config
    cfg = Config.fromfile(CLASSIFIER)
    torch.manual_seed(6)
    trained = MODELS.build(cfg.model).eval()
    path = str(tmp_path / 'classifier.pth')
    save_checkpoint(trained, path, list('abcd'))

    model = get_model(inference_config(CLASSIFIER), pretrained=path)
    assert type(model).__name__ == 'InfoPro'
    assert len(model.local_heads) == 0
    for key, value in trained.architecture.state_dict().items():
        assert torch.equal(model.architecture.state_dict()[key], value), key
    inferencer = ImageClassificationInferencer(
        model=inference_config(CLASSIFIER), pretrained=path, device='cpu')
    assert len(inferencer.model.local_heads) == 0
    image = np.random.default_rng(2).integers(0, 255, (32, 32, 3),
                                              dtype=np.uint8)
    result, = inferencer(image)
    assert result['pred_class'] in list('abcd')
    # the inferencer's scores are get_model's model's on the same input
    data = inferencer.pipeline(dict(img=image))
    batch = model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))
    with torch.no_grad():
        scores = model.eval()(batch['inputs'], batch['data_samples'],
                              mode='predict')[0].pred_score
    np.testing.assert_allclose(result['pred_scores'], scores.numpy(),
                               rtol=1e-5, atol=1e-6)
