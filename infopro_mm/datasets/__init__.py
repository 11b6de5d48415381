from .digits_cls import (DigitsOnPhotosDataset, make_digits_classification,
                         nuisance_labels)
from .digits_seg import DigitsSegDataset, make_digits_segmentation

__all__ = [
    'DigitsOnPhotosDataset', 'DigitsSegDataset', 'make_digits_classification',
    'make_digits_segmentation', 'nuisance_labels'
]
