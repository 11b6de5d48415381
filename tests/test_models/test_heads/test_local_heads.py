"""Auxiliary heads: paper architectures, losses, widths, bad input."""
import math

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import PixelData
from mmpretrain.structures import DataSample
from mmseg.structures import SegDataSample

from infopro_mm.models import (ContrastHead, LocalBatch, LocalClsHead,
                               LocalSegHead, ReconstructionHead,
                               supervised_contrastive_loss)
from infopro_mm.utils import SavedTensorTracker


def convs(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]


def test_reconstruction_head_large_is_table9():
    head = ReconstructionHead(in_channels=512, in_stride=8, arch='large')
    assert [c.out_channels for c in convs(head)] == [128, 32, 12, 3]
    assert [c.kernel_size for c in convs(head)] == [(1, 1), (3, 3), (3, 3),
                                                    (3, 3)]
    out = head(torch.randn(2, 512, 28, 28), (224, 224))
    assert out.shape == (2, 3, 224, 224)


def plain_decoder(head, feat, size):
    """The Table 9 decoder written as plain modules (upsample, then conv)."""
    x = head.stem(feat)
    for layer, scale in zip([*head.stages, head.out_conv], head.stage_scales):
        x = torch.nn.functional.interpolate(
            x, size=(size[0] // scale, size[1] // scale), mode='bilinear',
            align_corners=True)
        x = layer(x)
    return x


def test_reconstruction_head_keeps_no_upsampled_map_for_backward():
    torch.manual_seed(0)
    head = ReconstructionHead(
        in_channels=64, in_stride=8, arch='large').double()
    feat = torch.randn(2, 64, 8, 8, dtype=torch.double, requires_grad=True)
    with SavedTensorTracker() as fused:
        out = head(feat, (64, 64))
    grad = torch.randn_like(out)
    fused_grads = torch.autograd.grad(out, [feat, *head.parameters()], grad)
    with SavedTensorTracker() as plain:
        ref = plain_decoder(head, feat, (64, 64))
    ref_grads = torch.autograd.grad(ref, [feat, *head.parameters()], grad)
    torch.testing.assert_close(out, ref)
    for got, expected in zip(fused_grads, ref_grads):
        torch.testing.assert_close(got, expected)
    # the three upsampled maps (128x16x16, 32x32x32, 12x64x64 per image)
    upsampled = 2 * (128 * 16**2 + 32 * 32**2 + 12 * 64**2) * 8
    assert plain.peak_bytes - fused.peak_bytes == upsampled


def test_reconstruction_head_under_autocast():
    head = ReconstructionHead(in_channels=16, in_stride=4, arch='large')
    feat = torch.randn(2, 16, 8, 8, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = head(feat, (32, 32))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert head.out_conv.bias.grad.dtype == torch.float32
    assert head.stages[0][0].weight.grad.dtype == torch.float32
    assert feat.grad is not None and torch.isfinite(feat.grad).all()


def test_reconstruction_head_small_and_width():
    head = ReconstructionHead(in_channels=16, in_stride=2, arch='small',
                              width=2.0)
    assert [c.out_channels for c in convs(head)] == [24, 3]
    assert head(torch.randn(1, 16, 16, 16), (32, 32)).shape == (1, 3, 32, 32)


def test_reconstruction_loss_is_bce_to_denormalised_input():
    mean = torch.tensor([100., 110., 120.]).view(3, 1, 1)
    std = torch.tensor([50., 55., 60.]).view(3, 1, 1)
    raw = torch.randint(0, 256, (2, 3, 16, 16)).float()
    batch = LocalBatch((raw - mean) / std, None, mean, std)
    torch.testing.assert_close(batch.images01, raw / 255.)
    head = ReconstructionHead(in_channels=4, in_stride=1, arch='small')
    feat = torch.randn(2, 4, 16, 16)
    logits = head(feat, (16, 16))
    expected = torch.nn.functional.binary_cross_entropy(
        torch.sigmoid(logits), raw / 255.)
    torch.testing.assert_close(head.loss(feat, batch), expected)


def seg_samples(labels):
    samples = []
    for label in labels:
        s = SegDataSample()
        s.gt_sem_seg = PixelData(data=label[None])
        samples.append(s)
    return samples


def test_local_seg_head_is_table11_and_upsamples_logits():
    head = LocalSegHead(in_channels=1024, in_stride=8, num_classes=19)
    assert [c.out_channels for c in convs(head)] == [512, 19]
    assert any(isinstance(m, torch.nn.Dropout2d) for m in head.modules())
    head = LocalSegHead(in_channels=8, in_stride=4, num_classes=3,
                        dropout=0.)
    labels = torch.randint(0, 3, (2, 16, 16))
    labels[0, :2] = 255
    feat = torch.randn(2, 8, 4, 4)
    loss = head.loss(feat, LocalBatch(torch.zeros(2, 3, 16, 16),
                                      seg_samples(labels)))
    logits = torch.nn.functional.interpolate(
        head(feat), size=(16, 16), mode='bilinear', align_corners=True)
    expected = torch.nn.functional.cross_entropy(
        logits, labels, ignore_index=255)
    torch.testing.assert_close(loss, expected)


def test_local_seg_head_all_ignored_gives_zero():
    head = LocalSegHead(in_channels=8, in_stride=4, num_classes=3)
    labels = torch.full((1, 8, 8), 255)
    loss = head.loss(torch.randn(1, 8, 2, 2),
                     LocalBatch(torch.zeros(1, 3, 8, 8), seg_samples(labels)))
    assert loss.item() == 0. and not math.isnan(loss.item())


def test_local_cls_head_architectures():
    large = LocalClsHead(
        in_channels=512, in_stride=8, num_classes=1000, arch='large')
    assert [c.out_channels for c in convs(large)] == [128, 256, 512, 2048]
    assert [c.stride for c in convs(large)] == [(1, 1), (2, 2), (2, 2),
                                                (1, 1)]
    assert large(torch.randn(2, 512, 28, 28)).shape == (2, 1000)
    for stride, (channels, conv_stride) in {1: (32, 2), 2: (64, 2),
                                            4: (64, 1)}.items():
        small = LocalClsHead(in_channels=16, in_stride=stride,
                             num_classes=10, arch='small')
        assert convs(small)[0].out_channels == channels
        assert convs(small)[0].stride == (conv_stride, conv_stride)
    linear = LocalClsHead(in_channels=16, in_stride=1, num_classes=10,
                          arch='linear')
    assert convs(linear) == []
    half = LocalClsHead(in_channels=512, in_stride=8, num_classes=10,
                        arch='large', width=0.5)
    assert [c.out_channels for c in convs(half)] == [64, 128, 256, 1024]


def test_local_cls_head_hard_and_soft_labels():
    head = LocalClsHead(in_channels=8, in_stride=4, num_classes=3,
                        arch='linear')
    feat = torch.randn(2, 8, 4, 4)
    hard = [DataSample().set_gt_label(1), DataSample().set_gt_label(2)]
    batch = LocalBatch(torch.zeros(2, 3, 16, 16), hard)
    torch.testing.assert_close(
        head.loss(feat, batch),
        torch.nn.functional.cross_entropy(head(feat), torch.tensor([1, 2])))
    soft = [DataSample().set_gt_score(torch.tensor([0.5, 0.5, 0.])),
            DataSample().set_gt_score(torch.tensor([0., 0., 1.]))]
    loss = head.loss(feat, LocalBatch(torch.zeros(2, 3, 16, 16), soft))
    logp = torch.log_softmax(head(feat), 1)
    expected = -(0.5 * logp[0, 0] + 0.5 * logp[0, 1] + logp[1, 2]) / 2
    torch.testing.assert_close(loss, expected)


def naive_supcon(z, labels, tau):
    """The authors' averaging: per anchor over its positives, then anchors
    (an anchor without positives counts as 0)."""
    n = len(labels)
    per_anchor = []
    for i in range(n):
        denom = sum(torch.exp(z[i] @ z[k] / tau) for k in range(n) if k != i)
        terms = [-torch.log(torch.exp(z[i] @ z[j] / tau) / denom)
                 for j in range(n) if i != j and labels[i] == labels[j]]
        per_anchor.append(sum(terms) / len(terms) if terms else 0.)
    return sum(per_anchor) / n


def eq4_supcon(z, labels, tau):
    """The paper's Eq. 4: one mean over all positive pairs."""
    n = len(labels)
    terms = []
    for i in range(n):
        denom = sum(torch.exp(z[i] @ z[k] / tau) for k in range(n) if k != i)
        terms += [-torch.log(torch.exp(z[i] @ z[j] / tau) / denom)
                  for j in range(n) if i != j and labels[i] == labels[j]]
    return sum(terms) / len(terms)


def test_supervised_contrastive_loss_averages_like_the_authors():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(6, 5), dim=1)
    # unbalanced (class 0 has 3 samples) and class 2 has no positive
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    loss = supervised_contrastive_loss(z, labels, 0.07)
    torch.testing.assert_close(loss, naive_supcon(z, labels, 0.07))
    assert not torch.isclose(loss, eq4_supcon(z, labels, 0.07))
    # with the same number of samples per class both averagings agree
    balanced = torch.tensor([0, 1, 0, 1, 2, 2])
    torch.testing.assert_close(
        supervised_contrastive_loss(z, balanced, 0.07),
        eq4_supcon(z, balanced, 0.07))
    no_pairs = supervised_contrastive_loss(z[:3], torch.tensor([0, 1, 2]))
    assert no_pairs.item() == 0.


def test_contrast_head_projects_to_128_and_trains():
    head = ContrastHead(in_channels=16, in_stride=2, arch='small')
    assert head.fc.out_features == 128 and head.temperature == 0.07
    samples = [DataSample().set_gt_label(i % 2) for i in range(4)]
    loss = head.loss(torch.randn(4, 16, 8, 8),
                     LocalBatch(torch.zeros(4, 3, 16, 16), samples))
    loss.backward()
    assert head.fc.weight.grad is not None


def test_contrast_head_warns_once_when_its_embeddings_stay_collapsed(
        caplog):
    torch.manual_seed(0)
    head = ContrastHead(
        in_channels=16, in_stride=2, arch='small', collapse_patience=3)
    samples = [DataSample().set_gt_label(i % 2) for i in range(8)]
    batch = LocalBatch(torch.zeros(8, 3, 16, 16), samples)
    logger = MMLogger.get_current_instance()
    logger.addHandler(caplog.handler)
    try:
        for _ in range(2):  # distinct inputs: spread-out embeddings
            head.loss(torch.randn(8, 16, 8, 8) * 10, batch)
        assert head.collapsed_batches == 0
        same = torch.randn(1, 16, 8, 8).expand(8, -1, -1, -1)
        for _ in range(6):  # one input repeated: every embedding alike
            loss = head.loss(same, batch)
        torch.testing.assert_close(loss, torch.tensor(math.log(7)))
    finally:
        logger.removeHandler(caplog.handler)
    warnings = [r for r in caplog.records if 'collapsed' in r.getMessage()]
    assert len(warnings) == 1
    assert 'log(N - 1) = 1.95' in warnings[0].getMessage()
    head.eval()  # evaluation batches are not watched
    head.loss(same, batch)
    assert head.collapsed_batches == 6


@pytest.mark.parametrize('head', [
    ReconstructionHead(in_channels=8, in_stride=1, arch='small'),
    LocalSegHead(in_channels=8, in_stride=1, num_classes=2),
    LocalClsHead(in_channels=8, in_stride=1, num_classes=2, arch='small'),
])
def test_channel_mismatch_names_the_problem(head):
    with pytest.raises(ValueError, match='built for 8 input channels'):
        head.loss(torch.randn(1, 4, 4, 4), LocalBatch(torch.zeros(1, 3, 4, 4)))


@pytest.mark.parametrize('cls,kwargs', [
    (ReconstructionHead, dict(arch='huge')),
    (ReconstructionHead, dict()),
    (LocalClsHead, dict(num_classes=2)),
    (ContrastHead, dict()),
    (LocalSegHead, dict(num_classes=2, arch='large')),
    (LocalClsHead, dict(num_classes=2, arch='paper')),
    (LocalClsHead, dict(num_classes=2, arch='small', width=0)),
])
def test_bad_head_options_are_rejected(cls, kwargs):
    with pytest.raises(ValueError, match='arch|width'):
        cls(in_channels=8, in_stride=1, **kwargs)


@pytest.mark.parametrize('head', [
    ReconstructionHead(in_channels=16, in_stride=1, arch='small'),
    LocalClsHead(in_channels=16, in_stride=1, num_classes=10, arch='small'),
    LocalSegHead(in_channels=16, in_stride=4, num_classes=3),
])
def test_heads_start_from_the_authors_initialisation(head):
    torch.manual_seed(0)
    head.init_weights()
    for conv in convs(head):
        fan_out = conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
        std = conv.weight.std().item()
        assert abs(std - math.sqrt(2. / fan_out)) < 0.25 * math.sqrt(
            2. / fan_out), (conv, std)
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert (m.weight == 1).all() and (m.bias == 0).all()
