# ResNet-32 + InfoPro (Contrast) on CIFAR-10; rows add `split` and
# `loss_weights` (the authors' comand.sh lambdas and networks/configs.py
# split points).
# Local loss of module i = 0..K-2 (train.py / networks/resnet.py):
#   lambda1_i * R_w(x|h) + lambda2_i * L_contrast(h), each lambda linear from
#   its first-module value to its (K-1)-th-module value, written here as
#   loss_weights=dict(recon=(ixx_1, ixx_2), task=(ixy_1, ixy_2)).
# Heads (networks/auxiliary_nets.py; every comand.sh line uses
# `--aux_net_config 1c2f --aux_net_widen 1 --aux_net_feature_dim 128`):
# - recon: the paper's Table 7 decoder (bilinear upsampling to 32x32, 3x3
#   conv 12 + BN + ReLU, 3x3 conv 3, sigmoid + BCE on the de-normalised
#   image);
# - task: '1c2f' projection head (3x3 conv 32/64/64 + BN + ReLU, pooling,
#   FC 128 + ReLU, FC 128), supervised contrastive loss, tau 0.07.
# Same optimiser, schedule and data as end-to-end (one SGD for everything).
_base_ = './resnet32_cifar10.py'

model = dict(
    _delete_=True,
    type='infopro_mm.InfoPro',
    architecture=_base_.model,
    local_heads=dict(
        recon=dict(type='infopro_mm.ReconstructionHead', arch='small'),
        task=dict(type='infopro_mm.ContrastHead', arch='small')))
model_wrapper_cfg = dict(type='infopro_mm.InfoProDDP')
optim_wrapper = dict(type='infopro_mm.InfoProOptimWrapper')
custom_hooks = [dict(type='infopro_mm.InfoProHook')]
