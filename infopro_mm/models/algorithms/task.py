"""What InfoPro needs to know about the downstream task of an architecture."""
from typing import List, Tuple

import torch
from torch import nn

__all__ = ['dummy_data_samples', 'task_info']


def task_info(architecture: nn.Module) -> dict:
    """Label facts the local heads take as defaults.

    Args:
        architecture (nn.Module): The downstream model.

    Returns:
        dict: ``num_classes`` (and ``ignore_index`` for segmentors) when the
        architecture has them; empty for detectors.
    """
    decode_head = getattr(architecture, 'decode_head', None)
    if decode_head is not None:  # mmseg segmentor
        return dict(
            num_classes=decode_head.num_classes,
            ignore_index=decode_head.ignore_index)
    head = getattr(architecture, 'head', None)
    if head is not None and hasattr(head, 'num_classes'):  # mmpretrain
        return dict(num_classes=head.num_classes)
    return {}


def dummy_data_samples(architecture: nn.Module, batch_size: int,
                       size: Tuple[int, int]) -> List:
    """Data samples with valid labels, for dry runs (memory planning).

    Args:
        architecture (nn.Module): The downstream model.
        batch_size (int): Number of samples.
        size (tuple[int, int]): Input (H, W).

    Returns:
        list: mmseg ``SegDataSample`` or mmpretrain ``DataSample`` objects.
    """
    device = next(architecture.parameters()).device
    if hasattr(architecture, 'decode_head'):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        samples = []
        for _ in range(batch_size):
            sample = SegDataSample(
                metainfo=dict(img_shape=size, pad_shape=size, ori_shape=size))
            sample.gt_sem_seg = PixelData(
                data=torch.zeros((1, *size), dtype=torch.long, device=device))
            samples.append(sample)
        return samples
    if hasattr(architecture, 'head') and hasattr(architecture.head,
                                                 'num_classes'):
        from mmpretrain.structures import DataSample
        return [
            DataSample(metainfo=dict(img_shape=size)).set_gt_label(0)
            for _ in range(batch_size)
        ]
    raise NotImplementedError(
        f'memory planning supports mmseg segmentors and mmpretrain '
        f'classifiers, not {type(architecture).__name__}')
