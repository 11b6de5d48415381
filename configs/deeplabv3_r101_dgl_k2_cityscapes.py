# Baseline: decoupled greedy learning (DGL) = InfoPro without the
# reconstruction term (lambda1 = 0): the same K=2 cut and psi.
_base_ = ['./deeplabv3_r101_infopro_k2_cityscapes.py']

model = dict(
    local_heads=dict(recon=None), loss_weights=dict(_delete_=True, task=1.0))
