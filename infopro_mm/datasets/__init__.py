from infopro_mm.utils.dependencies import is_available

__all__ = []
# each digit set is a dataset of its downstream package (extras [seg], [cls])
if is_available('mmpretrain'):
    from .digits_cls import (DigitsOnPhotosDataset,
                             make_digits_classification, nuisance_labels)
    __all__ += [
        'DigitsOnPhotosDataset', 'make_digits_classification',
        'nuisance_labels'
    ]
if is_available('mmseg'):
    from .digits_seg import DigitsSegDataset, make_digits_segmentation
    __all__ += ['DigitsSegDataset', 'make_digits_segmentation']
