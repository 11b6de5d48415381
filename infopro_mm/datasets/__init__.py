from .digits_seg import DigitsSegDataset, make_digits_segmentation

__all__ = ['DigitsSegDataset', 'make_digits_segmentation']
