"""The demo's dataset is rebuilt when files are missing or settings differ."""
import os
import os.path as osp

from infopro_mm.datasets import make_digits_segmentation


def files(root, folder):
    return sorted(os.listdir(osp.join(root, folder)))


def test_incomplete_set_is_rebuilt(tmp_path):
    root = str(tmp_path / 'digits')
    make_digits_segmentation(root, num_train=6, num_val=2)
    whole = files(root, 'img_dir/train')
    assert len(whole) == 6 and files(root, 'ann_dir/val') == [
        '00000.png', '00001.png'
    ]
    # half of the training images deleted
    for name in whole[3:]:
        os.remove(osp.join(root, 'img_dir/train', name))
    make_digits_segmentation(root, num_train=6, num_val=2)
    assert files(root, 'img_dir/train') == whole
    # an annotation deleted
    os.remove(osp.join(root, 'ann_dir/val/00001.png'))
    make_digits_segmentation(root, num_train=6, num_val=2)
    assert len(files(root, 'ann_dir/val')) == 2


def test_other_settings_rebuild_and_a_whole_set_is_kept(tmp_path):
    root = str(tmp_path / 'digits')
    make_digits_segmentation(root, num_train=4, num_val=2)
    make_digits_segmentation(root, num_train=6, num_val=2)
    assert len(files(root, 'img_dir/train')) == 6
    # a whole set is not rewritten, also one marked by an older version
    # (an empty .complete)
    open(osp.join(root, '.complete'), 'w').close()
    path = osp.join(root, 'img_dir/train/00000.png')
    before = os.stat(path).st_mtime_ns
    make_digits_segmentation(root, num_train=6, num_val=2)
    assert os.stat(path).st_mtime_ns == before
